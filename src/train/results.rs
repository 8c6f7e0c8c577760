//! What `train-compare` measured, as plain data: the report, one result per column, one per sync
//! policy, and the messages a worker sends. The JSON schema is documented in docs/json-schema.md.
//!
//! Nothing here runs or draws anything: the runner fills these, `analysis` adds derived figures,
//! and `verdict`, `show`, `plot`, `diff` and `fleet` read them.

use serde::{Deserialize, Serialize};

use crate::engine::device::DeviceSpec;
use crate::engine::measured::{ColumnOutcome, DeviceFacts, DeviceStatus, RunOutcome, RunResult};
use crate::engine::runs::Runs;
use crate::engine::{Framework, SyncPolicy};
use crate::redact::Redactor;
use crate::stats::Spread;

pub const SCHEMA_VERSION: u32 = 1;

/// Everything `train-compare` measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunConfig {
    pub hidden: usize,
    pub lr: f64,
    pub epochs: u64,
    /// The most timed runs of a figure (exactly this many when `runs.target` is 0).
    pub repeats: u32,
    /// How many timed runs each figure got: at least `min`, at most `max` (per column, as its
    /// work and the time budget allow), more only while the median's confidence interval was
    /// wider than ±`target` (absent in older reports: exactly `repeats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<Runs>,
    pub warmup_epochs: u64,
    pub split_seed: u32,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Where the initial weights came from.
    pub init: String,
    pub policies: Vec<SyncPolicy>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Epochs each timed run trained, when the time budget made them fewer than `config.epochs`
    /// (the course's totals are then derived from them: see each policy's `course_total_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_epochs: Option<u64>,
    /// The loss curve of the last run, sampled at up to 200 evenly spaced epochs: [epoch, loss]
    /// (finite losses only).
    pub loss_curve_sampled: Vec<(u64, f32)>,
    /// Set when the last run's loss did not go down: it ended far above where it started, or rose
    /// by orders of magnitude on the way (absent in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did_not_learn: Option<LossRise>,
    /// Where this column's loss first left cpu×1's by more than float32 rounding explains (the
    /// correctness gate; absent when it agrees, or for cpu×1 itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrong_results: Option<Disagreement>,
    /// The curve as the worker sent it (up to 2048 points), for the plot and the sparkline; not in
    /// the JSON.
    #[serde(skip)]
    pub loss_curve: Vec<(u64, f32)>,
    /// The highest loss of the last run: (epoch, loss); not in the JSON.
    #[serde(skip)]
    pub loss_peak: Option<(u64, f32)>,
}

/// The first epoch at which two columns' losses disagree.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Disagreement {
    pub epoch: u64,
    pub loss: f32,
    /// cpu×1's loss at that epoch.
    pub reference_loss: f32,
}

/// A loss that went up instead of down.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LossRise {
    /// The loss of the first epoch.
    pub first_loss: f32,
    pub peak_epoch: u64,
    pub peak_loss: f32,
    /// The loss of the last epoch.
    pub final_loss: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicyResult {
    pub policy: SyncPolicy,
    pub runs: Vec<RunResult>,
    /// Per-epoch cost over the repeats, in microseconds.
    pub per_epoch_us: Option<Spread>,
    /// Whole timed run over the repeats, in seconds.
    pub total_s: Option<Spread>,
    /// The course's whole run (`config.epochs`), median, in seconds: measured, or when the runs
    /// were shorter, derived from their per-epoch cost (which holds this policy's syncs).
    #[serde(default)]
    pub course_total_s: Option<f64>,
    /// True when `course_total_s` is derived rather than measured.
    #[serde(default)]
    pub course_total_derived: bool,
    /// Readbacks in one run (the final one included).
    pub syncs: u64,
    /// Time blocked inside one readback call, over the repeats, in microseconds. On an
    /// asynchronous device this includes waiting for queued work.
    pub readback_us: Option<Spread>,
    /// Marginal cost of one sync, in µs: the median over rounds of (T(k) − T(never)) / (syncs(k)
    /// − syncs(never)), each round's runs paired; null when it cannot be measured (see
    /// `sync_cost_below_us` and `sync_cost_note`).
    pub sync_cost_us: Option<f64>,
    /// The 95% confidence interval of that median, in µs (it may reach below zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_cost_interval_us: Option<(f64, f64)>,
    /// That marginal cost as a share of one epoch without syncs (0.05 = 5 %).
    pub sync_share_of_epoch: Option<f64>,
    /// When the interval reaches below the verdicts' threshold (5% of an epoch; zero included),
    /// the runs cannot resolve the cost: this is the most it can be, in µs, and `sync_cost_us` is
    /// null.
    pub sync_cost_below_us: Option<f64>,
    /// Why a measured difference is not exported as a cost: it disagrees with the time measured
    /// inside the readback beyond the noise, or the runs that sync were faster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_cost_note: Option<String>,
    pub diverged_at: Option<u64>,
}

/// What the device ends with, after all its runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceOutcome {
    /// Training loss of the last epoch of the last run.
    pub final_loss: Option<f32>,
    /// Accuracy on the test rows after the last run.
    pub test_accuracy: Option<f64>,
    /// The loss curve of the last run: up to `protocol::CURVE_POINTS` (epoch, loss) pairs, evenly
    /// spaced, the first and last finite epochs included (NaN and infinity left out).
    pub loss_curve: Vec<(u64, f32)>,
    /// The highest finite loss of the last run: (epoch, loss).
    pub loss_peak: Option<(u64, f32)>,
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
            course_total_s: None,
            course_total_derived: false,
            syncs: runs.first().map_or(0, |r| r.syncs),
            readback_us,
            sync_cost_us: None,
            sync_cost_interval_us: None,
            sync_share_of_epoch: None,
            sync_cost_below_us: None,
            sync_cost_note: None,
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
            timed_epochs: None,
            loss_curve_sampled: Vec::new(),
            did_not_learn: None,
            wrong_results: None,
            loss_curve: Vec::new(),
            loss_peak: None,
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
        self.headline_spread().map(|s| s.median)
    }

    /// The runs behind [`Self::headline_per_epoch_us`], in µs per epoch.
    pub fn headline_spread(&self) -> Option<&Spread> {
        self.policy(SyncPolicy::NEVER)
            .or(self.policies.first())
            .and_then(|p| p.per_epoch_us.as_ref())
    }

    /// Keeps what the worker ended with: final loss, accuracy, memory, the loss curve.
    pub fn finish(&mut self, outcome: DeviceOutcome) {
        self.final_loss = outcome.final_loss;
        self.test_accuracy = outcome.test_accuracy;
        self.peak_memory_mib = outcome.peak_memory_mib;
        self.memory_kind = Some(outcome.memory_kind);
        self.loss_curve_sampled = thin(&outcome.loss_curve, 200);
        self.loss_curve = outcome.loss_curve;
        self.loss_peak = outcome.loss_peak;
    }
}

impl TrainCompareReport {
    /// What the run comes to: nothing trained when every column was not run or failed before
    /// finishing a policy's runs, wrong results when the correctness gate failed a column.
    pub fn outcome(&self) -> RunOutcome {
        RunOutcome::of(self.devices.iter().map(|d| ColumnOutcome {
            label: &d.label,
            status: d.status,
            status_words: d.status.words(),
            reason: d.reason.as_deref(),
            trained: !matches!(d.status, DeviceStatus::NotRun | DeviceStatus::Failed),
        }))
    }

    /// Replaces the identifying values `redactor` knows in every free-text field.
    pub fn redact(&mut self, redactor: &Redactor) {
        self.for_each_text(|text| *text = redactor.text(text));
        self.redacted = true;
    }

    /// Hands every free-text field to `edit`: reasons, names and notes that came from workers or
    /// files, and the verdict that quotes them.
    pub fn for_each_text(&mut self, mut edit: impl FnMut(&mut String)) {
        edit(&mut self.config.init);
        self.notes.iter_mut().for_each(&mut edit);
        for device in &mut self.devices {
            device.reason.iter_mut().for_each(&mut edit);
            device.memory_kind.iter_mut().for_each(&mut edit);
            if let Some(facts) = &mut device.facts {
                facts.name.iter_mut().for_each(&mut edit);
                facts.framework.iter_mut().for_each(&mut edit);
            }
        }
    }
}

/// Up to `points` of an already sampled curve, evenly spaced, the last point kept.
fn thin(curve: &[(u64, f32)], points: usize) -> Vec<(u64, f32)> {
    let step = curve.len().div_ceil(points.max(1)).max(1);
    let mut thinned: Vec<(u64, f32)> = curve.iter().copied().step_by(step).collect();
    if let Some(&last) = curve.last()
        && thinned.last() != Some(&last)
    {
        thinned.push(last);
    }
    thinned
}
