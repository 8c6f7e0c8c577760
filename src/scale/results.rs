//! What `hwbench scale` measured, as plain data (JSON schema in docs/json-schema.md). The runner
//! fills it, `analysis` adds the derived figures and the verdict, `show` and `plot` draw it.

use serde::{Deserialize, Serialize};

use super::protocol::PointTiming;
use crate::engine::Framework;
use crate::engine::device::DeviceSpec;
use crate::engine::fused::KernelChoice;
use crate::engine::measured::{ColumnOutcome, DeviceFacts, DeviceStatus, RunOutcome};
use crate::engine::synthetic::Size;
use crate::redact::Redactor;
use crate::stats::Spread;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScaleReport {
    pub schema_version: u32,
    /// Always "scale".
    pub kind: String,
    pub redacted: bool,
    pub hwbench_version: String,
    pub config: ScaleConfig,
    /// False when the run was interrupted: only finished points are present.
    pub complete: bool,
    /// The ladder, in order of work.
    pub ladder: Vec<LadderPoint>,
    pub devices: Vec<ScaleColumn>,
    /// For pairs of columns of one framework: from which point the faster one wins beyond noise.
    pub crossovers: Vec<Crossover>,
    /// Plain-language conclusions drawn from this run's numbers.
    pub verdict: Vec<String>,
    /// What was asked for but left out, one line each.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScaleConfig {
    /// The seed of the synthetic rows and initial weights.
    pub seed: u32,
    pub lr: f64,
    /// A device stops climbing when an epoch of the next point would take longer than this.
    pub max_epoch_s: f64,
    pub timing: PointTiming,
    /// The CPU kernels candle was told to use.
    pub kernels: KernelChoice,
    /// How FLOP per epoch are counted.
    pub flop_formula: String,
    /// How float32 matrix products run on CUDA devices.
    pub cuda_matmul: String,
}

/// One size of the ladder and what it costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LadderPoint {
    pub size: Size,
    pub flop_per_epoch: f64,
    /// The estimate a point is checked against before it is tried, in MiB.
    pub memory_needed_mib: f64,
    /// The course's model (4:10:3:120).
    pub course: bool,
}

/// One device and framework, up the ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScaleColumn {
    /// "cpu×1", "cuda:0", "pytorch cpu×2".
    pub label: String,
    pub device: DeviceSpec,
    pub framework: Framework,
    pub status: DeviceStatus,
    pub reason: Option<String>,
    pub facts: Option<DeviceFacts>,
    /// Free memory on the device when its worker started, in MiB.
    pub memory_free_mib: Option<f64>,
    /// The theoretical FP32 peak of what this column uses (its threads' cores, or the GPU), in
    /// GFLOP/s, and how it was reckoned.
    pub peak_gflops: Option<f64>,
    pub peak_basis: Option<String>,
    /// One entry per ladder point, in the ladder's order.
    pub points: Vec<PointResult>,
}

impl ScaleColumn {
    /// A column before its worker has said anything: no facts, no peak, no points yet.
    pub fn new(device: DeviceSpec, framework: Framework) -> Self {
        Self {
            label: framework.label(device),
            device,
            framework,
            status: DeviceStatus::Ok,
            reason: None,
            facts: None,
            memory_free_mib: None,
            peak_gflops: None,
            peak_basis: None,
            points: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointStatus {
    Measured,
    /// An epoch took, or would take, longer than `max_epoch_s`.
    OverBudget,
    /// The point needs more memory than the device had free.
    NeedsMemory,
    /// The worker failed at this point (`reason` says how).
    Failed,
    /// Not tried: the column stopped earlier (failure or interruption).
    NotRun,
}

impl PointStatus {
    pub fn words(self) -> &'static str {
        match self {
            Self::Measured => "measured",
            Self::OverBudget => "skipped: over budget",
            Self::NeedsMemory => "skipped: needs memory",
            Self::Failed => "failed",
            Self::NotRun => "not run",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PointResult {
    pub size: Size,
    pub status: PointStatus,
    pub reason: Option<String>,
    /// "fused", "stock" (candle's own operations) or "PyTorch".
    pub kernels: Option<String>,
    /// Epochs of each timed run.
    pub epochs: Option<u64>,
    /// Seconds per epoch over the timed runs.
    pub epoch_s: Option<Spread>,
    /// The first (cold) epoch, in seconds.
    pub cold_epoch_s: Option<f64>,
    /// FLOP per epoch / median seconds per epoch, in GFLOP/s.
    pub gflops: Option<f64>,
    /// `gflops` / the column's peak (0.5 = half the peak).
    pub peak_share: Option<f64>,
    pub first_loss: Option<f32>,
    pub final_loss: Option<f32>,
    /// The worker's memory after the point, in MiB.
    pub memory_mib: Option<f64>,
}

impl PointResult {
    pub fn not_measured(size: Size, status: PointStatus, reason: Option<String>) -> Self {
        Self {
            size,
            status,
            reason,
            kernels: None,
            epochs: None,
            epoch_s: None,
            cold_epoch_s: None,
            gflops: None,
            peak_share: None,
            first_loss: None,
            final_loss: None,
            memory_mib: None,
        }
    }

    /// The median seconds per epoch, when measured.
    pub fn median_s(&self) -> Option<f64> {
        self.epoch_s.as_ref().map(|s| s.median)
    }
}

/// Where `faster` starts beating `slower` beyond noise (measurably faster: `stats::compare`) and
/// keeps beating it at every larger point both measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Crossover {
    pub faster: String,
    pub slower: String,
    /// `None`: it is faster at the largest common point, but not beyond noise.
    pub from: Option<Size>,
    pub flop_per_epoch: Option<f64>,
    /// slower / faster fastest run at the largest point both measured (the ratio `stats::compare`
    /// states a difference by).
    pub speedup_at_largest: f64,
    pub largest: Size,
}

impl ScaleReport {
    /// What the run comes to: nothing trained when no column measured a point (a column stopped
    /// by a signal counts as trained: its report is kept), wrong results when a column's first
    /// losses disagree with the reference's (`analysis`).
    pub fn outcome(&self) -> RunOutcome {
        RunOutcome::of(self.devices.iter().map(|c| {
            ColumnOutcome {
                label: &c.label,
                status: c.status,
                status_words: match c.status {
                    DeviceStatus::Ok => "measured no point",
                    other => other.words(),
                },
                // A column that ran but measured no point says why through its first point.
                reason: c
                    .reason
                    .as_deref()
                    .or_else(|| c.points.first().and_then(|p| p.reason.as_deref())),
                trained: c.status == DeviceStatus::Interrupted
                    || c.points.iter().any(|p| p.status == PointStatus::Measured),
            }
        }))
    }

    /// Replaces identifying values in every free-text field that came from a worker or the
    /// machine (names, reasons) and in the verdict and notes that quote them.
    pub fn redact(&mut self, redactor: &Redactor) {
        self.redacted = true;
        let mut edit = |text: &mut String| *text = redactor.text(text);
        self.notes.iter_mut().for_each(&mut edit);
        for column in &mut self.devices {
            column.reason.iter_mut().for_each(&mut edit);
            if let Some(facts) = &mut column.facts {
                facts.name.iter_mut().for_each(&mut edit);
                facts.framework.iter_mut().for_each(&mut edit);
            }
            for point in &mut column.points {
                point.reason.iter_mut().for_each(&mut edit);
            }
        }
    }

    /// The column labelled `label`.
    pub fn column(&self, label: &str) -> Option<&ScaleColumn> {
        self.devices.iter().find(|c| c.label == label)
    }
}
