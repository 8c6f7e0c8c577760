//! The experiment as a whole: which devices, which policies, one worker per device, and the
//! report their measurements add up to.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::session::{DeviceFacts, RunResult, SessionRequest};
use super::stats::Spread;
use super::worker::{self, Message, WorkerCommand};
use super::{DeviceSpec, Framework, SyncPolicy, TrainConfig, verdict};

pub const SCHEMA_VERSION: u32 = 1;

/// Everything `train-compare` measured. The JSON schema is documented in docs/json-schema.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
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

impl PolicyResult {
    pub(crate) fn from_runs(policy: SyncPolicy, runs: Vec<RunResult>) -> Self {
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
    pub(crate) fn new(device: DeviceSpec, framework: Framework) -> Self {
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

    fn not_run(device: DeviceSpec, framework: Framework, reason: String) -> Self {
        Self {
            status: DeviceStatus::NotRun,
            reason: Some(reason),
            ..Self::new(device, framework)
        }
    }

    pub fn policy(&self, policy: SyncPolicy) -> Option<&PolicyResult> {
        self.policies.iter().find(|p| p.policy == policy)
    }

    /// The per-epoch cost used to compare devices: without syncs if measured, else the first policy.
    pub fn headline_per_epoch_us(&self) -> Option<f64> {
        self.policy(SyncPolicy { every: 0 })
            .or(self.policies.first())
            .and_then(|p| p.per_epoch_us)
            .map(|s| s.median)
    }
}

/// One planned column: the device, what trains on it, and how its worker starts (or why it
/// cannot).
pub struct PlannedDevice {
    pub device: DeviceSpec,
    pub framework: Framework,
    pub worker: Result<WorkerCommand, String>,
}

/// Everything needed to run the experiment, validated.
pub struct Plan {
    pub config: TrainConfig,
    pub policies: Vec<SyncPolicy>,
    pub repeats: u32,
    pub warmup_epochs: u64,
    pub devices: Vec<PlannedDevice>,
    /// Columns asked for but left out, one line each; copied into the report's `notes`.
    pub notes: Vec<String>,
}

/// How to start a CPU worker with `threads` threads: this executable, `worker` subcommand.
pub fn cpu_worker(threads: usize, timeout: Duration) -> Result<WorkerCommand, String> {
    let program: PathBuf =
        std::env::current_exe().map_err(|e| format!("cannot find the hwbench executable: {e}"))?;
    Ok(WorkerCommand {
        program,
        args: vec!["worker".to_string()],
        // candle reads its thread count from these on every parallel call.
        env: vec![
            ("CANDLE_NUM_THREADS".to_string(), threads.to_string()),
            ("RAYON_NUM_THREADS".to_string(), threads.to_string()),
        ],
        timeout,
        script: None,
    })
}

/// Runs every device in turn. Stops early, keeping what finished, when `interrupted` is set.
pub fn run(plan: &Plan, interrupted: &AtomicBool) -> CompareReport {
    let data = super::data::prepare(plan.config.split_seed);
    let total_runs =
        plan.devices.len() as u64 * plan.policies.len() as u64 * u64::from(plan.repeats);
    let progress = ProgressBar::new(total_runs).with_style(
        ProgressStyle::with_template("{spinner} {msg:28} [{bar:30}] {pos}/{len} runs, {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(200));

    let mut devices = Vec::new();
    for planned in &plan.devices {
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            devices.push(DeviceResult {
                status: DeviceStatus::Interrupted,
                reason: Some("interrupted before it started".to_string()),
                ..DeviceResult::new(planned.device, planned.framework)
            });
            continue;
        }
        let result = match &planned.worker {
            Ok(command) => run_device(plan, planned, command, interrupted, &progress),
            Err(reason) => DeviceResult::not_run(planned.device, planned.framework, reason.clone()),
        };
        devices.push(result);
    }
    progress.finish_and_clear();

    let complete = devices
        .iter()
        .all(|d| d.status != DeviceStatus::Interrupted);
    let mut report = CompareReport {
        schema_version: SCHEMA_VERSION,
        kind: "train-compare".to_string(),
        redacted: false,
        hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
        config: RunConfig {
            hidden: plan.config.hidden,
            lr: plan.config.lr,
            epochs: plan.config.epochs,
            repeats: plan.repeats,
            warmup_epochs: plan.warmup_epochs.min(plan.config.epochs),
            split_seed: plan.config.split_seed,
            train_rows: data.train_rows(),
            test_rows: data.test_rows(),
            init: plan.config.init.source.clone(),
            policies: plan.policies.clone(),
        },
        complete,
        devices,
        verdict: Vec::new(),
        notes: plan.notes.clone(),
    };
    derive(&mut report);
    report.verdict = verdict::write(&report);
    report
}

fn run_device(
    plan: &Plan,
    planned: &PlannedDevice,
    command: &WorkerCommand,
    interrupted: &AtomicBool,
    progress: &ProgressBar,
) -> DeviceResult {
    let request = SessionRequest {
        device: planned.device,
        config: plan.config.clone(),
        policies: plan.policies.clone(),
        repeats: plan.repeats,
        warmup_epochs: plan.warmup_epochs,
    };
    let mut result = DeviceResult::new(planned.device, planned.framework);
    let label = result.label.clone();
    let mut runs: Vec<(SyncPolicy, Vec<RunResult>)> =
        plan.policies.iter().map(|&p| (p, Vec::new())).collect();
    let mut reported = 0u64;
    progress.set_message(format!("{label}: warming up"));
    let outcome = worker::run(command, &request, interrupted, |message| match message {
        Message::Ready(facts) => result.facts = Some(facts),
        Message::Run(run) => {
            reported += 1;
            progress.inc(1);
            progress.set_message(format!("{label}: {}", run.policy.label()));
            if let Some((_, list)) = runs.iter_mut().find(|(policy, _)| *policy == run.policy) {
                list.push(run);
            }
        }
        Message::Finished(outcome) => {
            result.final_loss = outcome.final_loss;
            result.test_accuracy = outcome.test_accuracy;
            result.peak_memory_mib = outcome.peak_memory_mib;
            result.memory_kind = Some(outcome.memory_kind);
            result.loss_curve_sampled = sample_curve(&outcome.loss_curve, 200);
            result.loss_curve = outcome.loss_curve;
        }
        Message::Hello { .. } | Message::Error { .. } => {}
    });
    // After a failure or Ctrl-C, the policies keep the runs that finished (`runs` says how many).
    result.policies = runs
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(policy, list)| PolicyResult::from_runs(policy, list))
        .collect();
    let planned = plan.policies.len() as u64 * u64::from(plan.repeats);
    progress.inc(planned.saturating_sub(reported));
    match outcome {
        Ok(()) => {}
        // Ctrl-C in a terminal reaches the worker too, which may die before hwbench notices the
        // signal itself: any failure after it is the interruption.
        Err(_) if interrupted.load(std::sync::atomic::Ordering::SeqCst) => {
            result.status = DeviceStatus::Interrupted;
            result.reason = Some("interrupted (Ctrl-C)".to_string());
        }
        Err(failure) => {
            result.status = if result.policies.is_empty() && result.facts.is_none() {
                DeviceStatus::NotRun
            } else {
                DeviceStatus::Failed
            };
            result.reason = Some(failure.to_string());
        }
    }
    result
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

/// Figures computed from the measurements: marginal sync cost, speed relative to cpu×1.
pub(crate) fn derive(report: &mut CompareReport) {
    let never = SyncPolicy { every: 0 };
    for device in &mut report.devices {
        let baseline = device
            .policy(never)
            .and_then(|p| Some((p.total_s?, p.syncs, p.per_epoch_us?.median)));
        for policy in &mut device.policies {
            let (Some((t0, s0, epoch0)), Some(total)) = (baseline, policy.total_s) else {
                continue;
            };
            if policy.policy == never || policy.syncs <= s0 {
                continue;
            }
            let extra_syncs = (policy.syncs - s0) as f64;
            // The fastest runs are the least disturbed: a shared machine only ever adds time.
            let difference = total.min - t0.min;
            let noise = (total.max - total.min) / 2.0 + (t0.max - t0.min) / 2.0;
            // A negative difference beyond the spread is drift, not a sync that saves time.
            if difference <= noise {
                policy.sync_cost_below_us = Some(noise.max(difference.abs()) * 1e6 / extra_syncs);
            } else {
                let cost = difference * 1e6 / extra_syncs;
                policy.sync_cost_us = Some(cost);
                policy.sync_share_of_epoch = Some(cost / epoch0);
            }
        }
    }
    let cpu1 = report
        .devices
        .iter()
        .find(|d| d.device == DeviceSpec::Cpu { threads: 1 } && d.framework == Framework::Candle)
        .and_then(DeviceResult::headline_per_epoch_us);
    for device in &mut report.devices {
        device.speed_vs_cpu1 = match (cpu1, device.headline_per_epoch_us()) {
            (Some(base), Some(this)) if this > 0.0 => Some(base / this),
            _ => None,
        };
    }
}
