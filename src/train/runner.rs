//! The parent side of `train-compare`: one worker process per planned column, one after another
//! (never in parallel, so that they do not disturb each other's timings), and what they measure
//! gathered into a [`TrainCompareReport`] — measurements only: `analysis` works out the rest.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use indicatif::ProgressBar;

use super::plan::{Plan, timed_epochs};
use super::protocol::{
    CompareJob, CompareRequest, Event, EventCheck, Progress, SessionRequest, TimedRuns,
};
use super::results::{DeviceResult, PolicyResult, RunConfig, SCHEMA_VERSION, TrainCompareReport};
use crate::engine::SyncPolicy;
use crate::engine::columns::{Column, WorkerCommand};
use crate::engine::conversation::{Reply, starting, talk_to_worker};
use crate::engine::measured::{DeviceStatus, RunResult};
use crate::engine::protocol::WorkerRequest;
use crate::progress::progress_bar;

/// Runs every column in turn. Stops early, keeping what finished, when a stop signal arrives
/// (see `process::catch_stop_signals`).
pub fn run(plan: &Plan) -> TrainCompareReport {
    let progress = RunProgress::new(plan);
    let started = Instant::now();
    let deadline = plan.time_budget.map(|budget| started + budget);
    let mut devices = Vec::new();
    for (index, column) in plan.columns.columns.iter().enumerate() {
        progress.start_column(index);
        let share = Share {
            started,
            deadline,
            columns_left: plan.columns.columns[index..]
                .iter()
                .filter(|c| c.worker.is_ok())
                .count()
                .max(1),
        };
        let result = match starting(column) {
            Ok(command) => run_column(plan, column, command, &progress, share),
            Err((status, reason)) => {
                DeviceResult::stopped(column.device, column.framework, status, reason)
            }
        };
        devices.push(result);
    }
    progress.bar.finish_and_clear();

    let complete = devices
        .iter()
        .all(|d| d.status != DeviceStatus::Interrupted);
    TrainCompareReport {
        schema_version: SCHEMA_VERSION,
        kind: "train-compare".to_string(),
        redacted: false,
        hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
        config: RunConfig {
            hidden: plan.config.hidden,
            lr: plan.config.lr,
            epochs: plan.config.epochs,
            repeats: plan.repeats,
            warmup_epochs: plan.warmup_epochs,
            split_seed: plan.config.split_seed,
            train_rows: plan.data.train_rows(),
            test_rows: plan.data.test_rows(),
            init: plan.config.init.source.clone(),
            policies: plan.policies.clone(),
        },
        complete,
        devices,
        verdict: Vec::new(),
        notes: plan.columns.notes.clone(),
    }
}

/// The progress bar, counted in epochs (warm-ups included), moved by each worker's heartbeats;
/// a column's length is known for sure once its timed epochs are decided.
struct RunProgress {
    bar: ProgressBar,
    policies: Vec<SyncPolicy>,
    warmup_epochs: u64,
    repeats: u64,
    /// Epochs of each column's timed runs (the course's until the column calibrates).
    timed: RefCell<Vec<u64>>,
    current: Cell<usize>,
}

impl RunProgress {
    fn new(plan: &Plan) -> Self {
        let bar = progress_bar();
        let progress = Self {
            bar,
            policies: plan.policies.clone(),
            warmup_epochs: plan.warmup_epochs,
            repeats: u64::from(plan.repeats),
            timed: RefCell::new(vec![plan.config.epochs; plan.columns.columns.len()]),
            current: Cell::new(0),
        };
        progress
            .bar
            .set_length(progress.offset(plan.columns.columns.len()));
        progress
    }

    fn length(&self, timed: u64) -> u64 {
        self.policies.len() as u64 * (self.warmup_epochs + self.repeats * timed)
    }

    /// Where column `index` starts.
    fn offset(&self, index: usize) -> u64 {
        self.timed.borrow()[..index]
            .iter()
            .map(|&t| self.length(t))
            .sum()
    }

    fn start_column(&self, index: usize) {
        self.current.set(index);
        self.bar.set_position(self.offset(index));
    }

    fn set_timed_epochs(&self, epochs: u64) {
        self.timed.borrow_mut()[self.current.get()] = epochs;
        let columns = self.timed.borrow().len();
        self.bar.set_length(self.offset(columns));
    }

    /// Where `progress` is in this column's sequence: every warm-up, then the timed runs round by
    /// round, one of each policy per round.
    fn at(&self, progress: Progress) {
        let count = self.policies.len() as u64;
        let index = self
            .policies
            .iter()
            .position(|p| *p == progress.policy)
            .unwrap_or_default() as u64;
        let timed = self.timed.borrow()[self.current.get()];
        let done = if progress.repeat == 0 {
            index * self.warmup_epochs + progress.epoch.min(self.warmup_epochs)
        } else {
            count * self.warmup_epochs
                + ((u64::from(progress.repeat) - 1) * count + index) * timed
                + progress.epoch
        };
        let column = self.current.get();
        self.bar
            .set_position(self.offset(column) + done.min(self.length(timed)));
    }

    fn tick(&self) {
        self.bar.tick();
    }
}

/// What a column may spend: the run's deadline, shared by the columns still to run.
#[derive(Clone, Copy)]
struct Share {
    started: Instant,
    deadline: Option<Instant>,
    /// Columns still to run, this one included.
    columns_left: usize,
}

/// One column: its worker's whole session, or as much of it as finished.
fn run_column(
    plan: &Plan,
    column: &Column,
    command: &WorkerCommand,
    progress: &RunProgress,
    share: Share,
) -> DeviceResult {
    let session = SessionRequest {
        device: column.device,
        config: plan.config.clone(),
        policies: plan.policies.clone(),
        repeats: plan.repeats,
        warmup_epochs: plan.warmup_epochs,
        calibrate: true,
    };
    let mut result = DeviceResult::new(column.device, column.framework);
    let label = result.label.clone();
    let mut runs: Vec<(SyncPolicy, Vec<RunResult>)> =
        plan.policies.iter().map(|&p| (p, Vec::new())).collect();
    progress.bar.set_message(format!("{label}: warming up"));
    let mut check = EventCheck::new(&session);
    let request = WorkerRequest::new(CompareRequest::Compare(Box::new(CompareJob {
        session: session.clone(),
        data: plan.data.clone(),
    })));
    let outcome = talk_to_worker(command, &request, &|| progress.tick(), |event| {
        check.check(&event)?;
        Ok(match event {
            Event::Ready(facts) => {
                result.facts = Some(facts);
                Reply::Nothing
            }
            Event::Progress(at) => {
                progress.at(at);
                if at.repeat > 0 {
                    progress
                        .bar
                        .set_message(format!("{label}: {}", at.policy.label()));
                }
                Reply::Nothing
            }
            Event::Calibrated { per_epoch_us } => {
                let now = Instant::now();
                let budget = share.deadline.map(|deadline| {
                    deadline.saturating_duration_since(now) / share.columns_left as u32
                });
                let epochs = timed_epochs(budget, &per_epoch_us, plan.repeats, plan.config.epochs);
                if epochs < plan.config.epochs {
                    result.timed_epochs = Some(epochs);
                }
                progress.set_timed_epochs(epochs);
                foretell(share, now, &per_epoch_us, plan.repeats, epochs);
                check.expect_epochs(epochs);
                Reply::Send(TimedRuns { epochs })
            }
            Event::Run(run) => {
                progress.at(Progress {
                    policy: run.policy,
                    repeat: run.repeat,
                    epoch: run.epochs,
                });
                progress
                    .bar
                    .set_message(format!("{label}: {}", run.policy.label()));
                if let Some((_, list)) = runs.iter_mut().find(|(policy, _)| *policy == run.policy) {
                    list.push(run);
                }
                Reply::Nothing
            }
            Event::Finished(outcome) => {
                result.finish(outcome);
                Reply::Done
            }
        })
    });
    // After a failure or a stop, the policies keep the runs that finished (`runs` says how many).
    result.policies = runs
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(policy, list)| PolicyResult::from_runs(policy, list))
        .collect();
    if let Err(failure) = outcome {
        let started = !result.policies.is_empty() || result.facts.is_some();
        let (status, reason) = failure.outcome(started);
        result.status = status;
        result.reason = Some(reason);
    }
    result
}

/// Says once, on stderr, when the run will take over ten minutes (the columns still to run
/// guessed to cost as much as this one).
fn foretell(share: Share, now: Instant, per_epoch_us: &[f64], repeats: u32, epochs: u64) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let column = per_epoch_us.iter().sum::<f64>() * f64::from(repeats) * epochs as f64 / 1e6;
    let spent = now.duration_since(share.started).as_secs_f64();
    let whole = spent + column * share.columns_left as f64;
    if whole > 600.0 && !SAID.swap(true, std::sync::atomic::Ordering::SeqCst) {
        crate::error::say(&format!(
            "hwbench: this run will take about {} (without --time-budget, every timed run trains all {epochs} epochs)",
            crate::readable::seconds(whole)
        ));
    }
}
