//! The parent side of `train-compare`: one worker process per planned column, all alive at once
//! but never computing at the same time. Each column warms up in turn; then the timed runs come in
//! rounds — one run of every policy of every column, A, B, C, A, B, C … — so that a drift of the
//! machine (another tenant, a clock change) weighs on every column alike, until each figure's
//! median is known precisely enough or its runs or the time budget are spent (`engine::runs`).
//! What they measure is gathered into a [`TrainCompareReport`] — measurements only: `analysis`
//! works out the rest.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::plan::Plan;
use super::protocol::{CompareJob, CompareRequest, Event, EventCheck, SessionRequest, SessionStep};
use super::results::{DeviceResult, PolicyResult, RunConfig, SCHEMA_VERSION, TrainCompareReport};
use crate::engine::SyncPolicy;
use crate::engine::columns::Column;
use crate::engine::conversation::{Worker, WorkerFailure, starting};
use crate::engine::measured::{DeviceStatus, RunResult};
use crate::engine::protocol::WorkerRequest;
use crate::engine::runs::Runs;
use crate::progress::Progress;

/// Runs every column. Stops early, keeping what finished, when a stop signal arrives (see
/// `process::catch_stop_signals`). `job` names it in the progress lines.
pub fn run(plan: &Plan, job: &str) -> TrainCompareReport {
    let bar = Progress::new(job);
    let started = Instant::now();
    let sessions: Vec<SessionRequest> = plan
        .columns
        .columns
        .iter()
        .map(|column| SessionRequest {
            device: column.device,
            config: plan.config.clone(),
            policies: plan.policies.clone(),
            warmup_epochs: plan.warmup_epochs,
        })
        .collect();
    let mut live: Vec<Live> = plan
        .columns
        .columns
        .iter()
        .zip(&sessions)
        .map(|(column, session)| Live::new(column, session, plan))
        .collect();
    bar.set_length(live.len() as u64 * 100);

    // Warm-ups, one column after another; each worker then waits, idle, for its rounds.
    bar.preparing("warm-up", format!("{} column(s)", live.len()));
    for (index, (column, live)) in plan.columns.columns.iter().zip(&mut live).enumerate() {
        bar.set_position(index as u64 * 100);
        live.warm_up(plan, column, &bar);
    }
    let deadline = plan.time_budget.map(|budget| started + budget);
    let calibrated = live.iter().filter(|l| l.worker.is_some()).count().max(1);
    for column in &mut live {
        if let Some(costs) = column.calibrated.clone() {
            let now = Instant::now();
            let share = deadline.map(|d| d.saturating_duration_since(now) / calibrated as u32);
            (column.epochs, column.runs) = plan.timing(share, &costs);
            foretell(started, &costs, column.epochs, column.runs.max, calibrated);
        }
    }

    // Rounds, interleaved across columns, while any figure wants another run.
    // From here on the bar counts the rounds' expected time (thousandths), so that the time
    // left reckons with slow columns.
    bar.set_length(1000);
    bar.set_position(0);
    bar.reset_eta();
    bar.phase("timed runs", "round 1");
    let mut round_time = Duration::ZERO;
    let mut rounds = 0;
    loop {
        // Each round starts one column later than the last: no column always runs first.
        let mut wanted: Vec<usize> = (0..live.len()).filter(|&i| live[i].wants_round()).collect();
        if wanted.is_empty() {
            break;
        }
        let shift = rounds % wanted.len();
        wanted.rotate_left(shift);
        // Beyond each column's fewest runs, a round starts only if it fits the budget.
        let beyond_min = wanted.iter().all(|&i| live[i].round >= live[i].runs.min);
        if beyond_min && deadline.is_some_and(|d| Instant::now() + round_time > d) {
            break;
        }
        let round_started = Instant::now();
        for &i in &wanted {
            live[i].round(&bar);
            bar.set_position(timed_share(&live));
        }
        round_time = round_started.elapsed();
        rounds += 1;
    }
    bar.set_position(1000);
    for column in &mut live {
        column.finish(&bar);
    }
    bar.finish_and_clear();

    let devices: Vec<DeviceResult> = live.into_iter().map(Live::result).collect();
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
            repeats: plan.runs.max,
            runs: Some(plan.runs),
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

/// One column during the run: its worker while it lives, what it measured so far, and its timing.
struct Live<'a> {
    result: DeviceResult,
    worker: Option<Worker>,
    check: EventCheck<'a>,
    runs_by_policy: Vec<(SyncPolicy, Vec<RunResult>)>,
    /// Per-epoch costs of the warm-ups, once calibrated.
    calibrated: Option<Vec<f64>>,
    epochs: u64,
    runs: Runs,
    round: u32,
    /// Epochs of the course, to tell whether the timed runs were shortened.
    course: u64,
    /// The column could not start: its status and reason are final.
    request: Option<WorkerRequest<CompareRequest>>,
}

impl<'a> Live<'a> {
    fn new(column: &Column, session: &'a SessionRequest, plan: &Plan) -> Self {
        Self {
            result: DeviceResult::new(column.device, column.framework),
            worker: None,
            check: EventCheck::new(session),
            runs_by_policy: plan.policies.iter().map(|&p| (p, Vec::new())).collect(),
            calibrated: None,
            epochs: plan.config.epochs,
            runs: plan.runs,
            round: 0,
            course: plan.config.epochs,
            request: Some(WorkerRequest::new(CompareRequest::Compare(Box::new(
                CompareJob {
                    session: session.clone(),
                    data: plan.data.clone(),
                },
            )))),
        }
    }

    /// Starts the worker and reads its warm-ups, until it has calibrated.
    fn warm_up(&mut self, plan: &Plan, column: &Column, bar: &ProgressBar) {
        let label = self.result.label.clone();
        let Some(request) = self.request.take() else {
            return;
        };
        let command = match starting(column) {
            Ok(command) => command,
            Err((status, reason)) => {
                self.result.status = status;
                self.result.reason = Some(reason);
                return;
            }
        };
        bar.set_message(format!("{label}: warming up"));
        let mut worker = match Worker::start(command, &request) {
            Ok(worker) => worker,
            Err(failure) => return self.fail(&failure),
        };
        let warmup_epochs = plan.warmup_epochs * plan.policies.len() as u64;
        let start = bar.position();
        let facts = &mut self.result.facts;
        let check = &mut self.check;
        let calibrated = worker.step(
            None::<SessionStep>,
            check,
            &|| bar.tick(),
            |event| match event {
                Event::Calibrated { per_epoch_us } => Some(per_epoch_us),
                Event::Ready(ready) => {
                    *facts = Some(ready);
                    None
                }
                Event::Progress(at) => {
                    let index = plan
                        .policies
                        .iter()
                        .position(|p| *p == at.policy)
                        .unwrap_or_default() as u64;
                    let done = index * plan.warmup_epochs + at.epoch.min(plan.warmup_epochs);
                    bar.set_position(start + 30 * done / warmup_epochs.max(1));
                    None
                }
                _ => None,
            },
        );
        match calibrated {
            Ok(costs) => {
                self.calibrated = Some(costs);
                self.worker = Some(worker);
            }
            Err(failure) => self.fail(&failure),
        }
    }

    /// Whether this column takes part in the next round.
    fn wants_round(&self) -> bool {
        self.worker.is_some()
            && self
                .runs_by_policy
                .iter()
                .any(|(_, runs)| self.runs.wants_more(&per_epoch(runs)))
    }

    /// One timed run of every policy.
    fn round(&mut self, bar: &ProgressBar) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let step = SessionStep::Round {
            epochs: self.epochs,
        };
        self.round += 1;
        bar.set_message(format!("{}: round {}", self.result.label, self.round));
        let (check, runs) = (&mut self.check, &mut self.runs_by_policy);
        let mut left = runs.len();
        let done = worker.step(Some(step), check, &|| bar.tick(), |event| {
            if let Event::Run(run) = event
                && let Some((_, list)) = runs.iter_mut().find(|(p, _)| *p == run.policy)
            {
                list.push(run);
                left -= 1;
            }
            (left == 0).then_some(())
        });
        match done {
            Ok(()) => self.worker = Some(worker),
            Err(failure) => self.fail(&failure),
        }
    }

    /// Tells the worker to finish and keeps what it ends with.
    fn finish(&mut self, bar: &ProgressBar) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let check = &mut self.check;
        let finished =
            worker.step(
                Some(SessionStep::Finish),
                check,
                &|| bar.tick(),
                |event| match event {
                    Event::Finished(outcome) => Some(outcome),
                    _ => None,
                },
            );
        match finished {
            Ok(outcome) => self.result.finish(outcome),
            Err(failure) => self.fail(&failure),
        }
    }

    /// The worker failed or was stopped: the column keeps the runs that finished.
    fn fail(&mut self, failure: &WorkerFailure) {
        self.worker = None;
        let started =
            self.runs_by_policy.iter().any(|(_, r)| !r.is_empty()) || self.result.facts.is_some();
        let (status, reason) = failure.outcome(started);
        self.result.status = status;
        self.result.reason = Some(reason);
    }

    fn result(self) -> DeviceResult {
        let mut result = self.result;
        if self.epochs < self.course && self.round > 0 {
            result.timed_epochs = Some(self.epochs);
        }
        // After a failure or a stop, the policies keep the runs that finished (`runs` says how
        // many).
        result.policies = self
            .runs_by_policy
            .into_iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(policy, list)| PolicyResult::from_runs(policy, list))
            .collect();
        result
    }
}

/// Each run's cost per epoch, in µs.
fn per_epoch(runs: &[RunResult]) -> Vec<f64> {
    runs.iter().map(RunResult::per_epoch_us).collect()
}

/// How far the timed rounds are, in thousandths of their expected time: each column's rounds so
/// far (at most its most runs) weighed by what a round of it costs (its warm-ups' epochs).
fn timed_share(live: &[Live]) -> u64 {
    let (mut done, mut all) = (0.0, 0.0);
    for column in live {
        let per_round: f64 = column.calibrated.as_ref().map_or(0.0, |costs| {
            costs.iter().sum::<f64>() * column.epochs as f64
        });
        let most = f64::from(column.runs.max);
        all += per_round * most;
        done += per_round * f64::from(column.round).min(most);
    }
    if all > 0.0 {
        (1000.0 * done / all) as u64
    } else {
        0
    }
}

/// Says once, on stderr, when the run may take over ten minutes (every calibrated column guessed
/// to cost as much as this one).
fn foretell(started: Instant, per_epoch_us: &[f64], epochs: u64, runs: u32, columns: usize) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let column = per_epoch_us.iter().sum::<f64>() * f64::from(runs) * epochs as f64 / 1e6;
    let whole = started.elapsed().as_secs_f64() + column * columns as f64;
    if whole > 600.0 && !SAID.swap(true, std::sync::atomic::Ordering::SeqCst) {
        crate::error::say(&format!(
            "hwbench: this run may take about {} (without --time-budget, every timed run trains all {epochs} epochs)",
            crate::readable::seconds(whole)
        ));
    }
}
