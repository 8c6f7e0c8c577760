//! What `train-compare` measured, as plain data: the report, one result per column, one per sync
//! policy, and the messages a worker sends. The JSON schema is documented in docs/json-schema.md.
//!
//! Nothing here runs or draws anything: the runner fills these, `analysis` adds derived figures,
//! and `verdict`, `show`, `plot`, `diff` and `fleet` read them.

use serde::{Deserialize, Serialize};

use super::{DeviceSpec, Framework, SyncPolicy};
use crate::stats::Spread;

pub const SCHEMA_VERSION: u32 = 1;

/// Everything `train-compare` measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainCompareReport {
    pub schema_version: u32,
    /// Always "train-compare".
    pub kind: String,
    pub redacted: bool,
    pub hwbench_version: String,
    pub config: RunConfig,
    /// False when the run was interrupted: only finished runs are present (see each policy's `runs`).
    pub complete: bool,
    pub devices: Vec<DeviceResult>,
    /// Plain-language conclusions drawn from this run's numbers.
    pub verdict: Vec<String>,
    /// What was asked for but left out, one line each (e.g. why there are no PyTorch columns).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub hidden: usize,
    pub lr: f64,
    pub epochs: u64,
    pub repeats: u32,
    pub warmup_epochs: u64,
    pub split_seed: u32,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Where the initial weights came from.
    pub init: String,
    pub policies: Vec<SyncPolicy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Every policy ran.
    Ok,
    /// The device could not be used; `reason` says why.
    NotRun,
    /// The worker failed part-way; the finished policies are kept.
    Failed,
    /// Ctrl-C stopped it; the finished policies are kept.
    Interrupted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceResult {
    /// Column label: "cpu×1", "cpu×16", "cuda:0", "pytorch cpu×16".
    pub label: String,
    pub device: DeviceSpec,
    /// What trained it (absent in reports from before `--with-pytorch`: candle).
    #[serde(default)]
    pub framework: Framework,
    pub status: DeviceStatus,
    pub reason: Option<String>,
    pub facts: Option<DeviceFacts>,
    pub policies: Vec<PolicyResult>,
    pub final_loss: Option<f32>,
    pub test_accuracy: Option<f64>,
    pub peak_memory_mib: Option<f64>,
    pub memory_kind: Option<String>,
    /// Median per-epoch cost of `cpu×1` divided by this device's, both without syncs during
    /// training (or at the first policy when "never" was not measured). Above 1 is faster.
    pub speed_vs_cpu1: Option<f64>,
    /// The loss curve of the last run, sampled at up to 200 evenly spaced epochs: [epoch, loss]
    /// (finite losses only).
    pub loss_curve_sampled: Vec<(u64, f32)>,
    /// The whole curve, for the plot and the sparkline; not in the JSON.
    #[serde(skip)]
    pub loss_curve: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    pub policy: SyncPolicy,
    pub runs: Vec<RunResult>,
    /// Per-epoch cost over the repeats, in microseconds.
    pub per_epoch_us: Option<Spread>,
    /// Whole training run over the repeats, in seconds.
    pub total_s: Option<Spread>,
    /// Readbacks in one run (the final one included).
    pub syncs: u64,
    /// Time blocked inside one readback call, over the repeats, in microseconds. On an
    /// asynchronous device this includes waiting for queued work.
    pub readback_us: Option<Spread>,
    /// Marginal cost of one sync: (T(k) − T(never)) / (syncs(k) − syncs(never)), fastest runs, in µs.
    pub sync_cost_us: Option<f64>,
    /// That marginal cost as a share of one epoch without syncs (0.05 = 5 %).
    pub sync_share_of_epoch: Option<f64>,
    /// When T(k) − T(never) is inside the run-to-run spread (or negative), the marginal cost cannot
    /// be measured; this is the most it can be (spread / extra syncs), in µs, and `sync_cost_us` is
    /// null.
    pub sync_cost_below_us: Option<f64>,
    pub diverged_at: Option<u64>,
}

/// Facts about the device, known once the first warm-up run is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// CPU model or GPU name, as the worker sees it.
    pub name: Option<String>,
    /// What trains, with its version: "candle 0.11.1", "PyTorch 2.5.1" (absent in older reports).
    #[serde(default)]
    pub framework: Option<String>,
    /// Creating the device (for CUDA: the context), in milliseconds.
    pub open_ms: f64,
    /// Data and parameters onto the device, in milliseconds.
    pub setup_ms: f64,
    /// The very first epoch on this device (cold: first allocations, kernel loading), in ms.
    pub first_epoch_ms: f64,
}

/// One timed training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub policy: SyncPolicy,
    /// 1-based repeat number.
    pub repeat: u32,
    /// Epochs trained (fewer than asked only when the loss diverged).
    pub epochs: u64,
    /// Wall time from the first epoch to the final readback, synchronised, in seconds.
    pub total_s: f64,
    /// Readbacks of the loss to the host, the final one included.
    pub syncs: u64,
    /// Time spent inside the readback calls, in seconds. On an asynchronous device this includes
    /// waiting for the queued work to finish.
    pub readback_s: f64,
    /// Epoch whose loss was NaN or infinite, if any; training stops there.
    pub diverged_at: Option<u64>,
    pub final_loss: Option<f32>,
}

impl RunResult {
    pub fn per_epoch_us(&self) -> f64 {
        self.total_s * 1e6 / self.epochs.max(1) as f64
    }
}

/// What the device ends with, after all its runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceOutcome {
    /// Training loss of the last epoch of the last run.
    pub final_loss: Option<f32>,
    /// Accuracy on the test rows after the last run.
    pub test_accuracy: Option<f64>,
    /// Loss of every epoch of the last run (NaN or infinity travel as `null`).
    #[serde(with = "non_finite_as_null")]
    pub loss_curve: Vec<f32>,
    /// Peak memory: see `memory_kind`, in MiB.
    pub peak_memory_mib: Option<f64>,
    /// What `peak_memory_mib` measures.
    pub memory_kind: String,
}

impl PolicyResult {
    /// The summary of the timed runs of one policy (derived figures are added by `analysis`).
    pub fn from_runs(policy: SyncPolicy, runs: Vec<RunResult>) -> Self {
        let readback_us = Spread::of(
            runs.iter()
                .map(|r| r.readback_s * 1e6 / r.syncs.max(1) as f64),
        );
        Self {
            policy,
            per_epoch_us: Spread::of(runs.iter().map(RunResult::per_epoch_us)),
            total_s: Spread::of(runs.iter().map(|r| r.total_s)),
            syncs: runs.first().map_or(0, |r| r.syncs),
            readback_us,
            sync_cost_us: None,
            sync_share_of_epoch: None,
            sync_cost_below_us: None,
            diverged_at: runs.iter().find_map(|r| r.diverged_at),
            runs,
        }
    }
}

impl DeviceResult {
    pub fn new(device: DeviceSpec, framework: Framework) -> Self {
        Self {
            label: framework.label(device),
            device,
            framework,
            status: DeviceStatus::Ok,
            reason: None,
            facts: None,
            policies: Vec::new(),
            final_loss: None,
            test_accuracy: None,
            peak_memory_mib: None,
            memory_kind: None,
            speed_vs_cpu1: None,
            loss_curve_sampled: Vec::new(),
            loss_curve: Vec::new(),
        }
    }

    /// A column that did not run (or not completely), with its status and the reason.
    pub fn stopped(
        device: DeviceSpec,
        framework: Framework,
        status: DeviceStatus,
        reason: String,
    ) -> Self {
        Self {
            status,
            reason: Some(reason),
            ..Self::new(device, framework)
        }
    }

    pub fn policy(&self, policy: SyncPolicy) -> Option<&PolicyResult> {
        self.policies.iter().find(|p| p.policy == policy)
    }

    /// The per-epoch cost used to compare devices: without syncs if measured, else the first policy.
    pub fn headline_per_epoch_us(&self) -> Option<f64> {
        self.policy(SyncPolicy::NEVER)
            .or(self.policies.first())
            .and_then(|p| p.per_epoch_us)
            .map(|s| s.median)
    }

    /// Keeps what the worker ended with: final loss, accuracy, memory, the loss curve.
    pub fn finish(&mut self, outcome: DeviceOutcome) {
        self.final_loss = outcome.final_loss;
        self.test_accuracy = outcome.test_accuracy;
        self.peak_memory_mib = outcome.peak_memory_mib;
        self.memory_kind = Some(outcome.memory_kind);
        self.loss_curve_sampled = sample_curve(&outcome.loss_curve, 200);
        self.loss_curve = outcome.loss_curve;
    }
}

/// Up to `points` (epoch, loss) pairs, evenly spaced, always including the last epoch.
fn sample_curve(curve: &[f32], points: usize) -> Vec<(u64, f32)> {
    if curve.is_empty() {
        return Vec::new();
    }
    let step = curve.len().div_ceil(points).max(1);
    let mut sampled: Vec<(u64, f32)> = (0..curve.len())
        .step_by(step)
        .map(|i| (i as u64 + 1, curve[i]))
        .filter(|(_, loss)| loss.is_finite())
        .collect();
    if sampled.last().map(|(e, _)| *e) != Some(curve.len() as u64)
        && curve[curve.len() - 1].is_finite()
    {
        sampled.push((curve.len() as u64, curve[curve.len() - 1]));
    }
    sampled
}

/// JSON has no NaN or infinity: a diverged loss travels as `null` and comes back as NaN.
mod non_finite_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|v| v.is_finite().then_some(*v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
        let values = Vec::<Option<f32>>::deserialize(deserializer)?;
        Ok(values.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect())
    }
}
