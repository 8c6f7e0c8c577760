//! The parent side of `hwbench scale`: one worker per column, all alive at once but never
//! computing at the same time. Point by point, every column prepares its next point, then the
//! timed runs come in rounds — one run of every column, A, B, C, A, B, C … — until each column's
//! median is known precisely enough (`engine::runs`), so that a drift of the machine weighs on
//! every column alike.
//! Before each point the parent decides whether the device can take it — in memory (the estimate
//! against what the worker found free) and in time (the last point's epoch, scaled by the work,
//! against `--max-epoch-seconds`).

use indicatif::ProgressBar;

use super::analysis;
use super::plan::{FLOP_FORMULA, ScalePlan, cuda_matmul};
use super::protocol::PointTiming;
use super::protocol::{
    LadderRequest, LadderStep, PointPrepared, PointRun, ScaleCheck, ScaleEvent, ScaleRequest,
};
use super::results::{
    LadderPoint, PointResult, PointStatus, SCHEMA_VERSION, ScaleColumn, ScaleConfig, ScaleReport,
};
use crate::engine::columns::Column;
use crate::engine::conversation::{Worker, WorkerFailure, starting};
use crate::engine::device::DeviceSpec;
use crate::engine::measured::DeviceStatus;
use crate::engine::protocol::WorkerRequest;
use crate::engine::runs::Runs;
use crate::engine::synthetic::Size;
use crate::info::peaks;
use crate::progress::progress_bar;
use crate::readable;
use crate::stats::Spread;

/// A point is tried only when its estimated memory fits in this share of what was free.
const MEMORY_HEADROOM: f64 = 0.9;

/// Runs every column up the ladder and gathers the measurements (`analysis` works out the rest).
/// Stops early, keeping the finished points, on a stop signal.
pub fn run(plan: &ScalePlan) -> ScaleReport {
    let bar = progress_bar();
    let runnable = plan
        .columns
        .columns
        .iter()
        .filter(|c| c.worker.is_ok())
        .count();
    bar.set_length((runnable * plan.ladder.len()) as u64);
    let steps = Steps::new(&plan.ladder, plan.settings.max_epoch_s);
    let mut live: Vec<Climb> = plan
        .columns
        .columns
        .iter()
        .map(|column| Climb::start(plan, column, &bar))
        .collect();
    while live.iter().any(|c| c.worker.is_some()) {
        // Every column still climbing prepares its next point (its data shares the memory with
        // the other columns' on the same device)…
        for i in 0..live.len() {
            let sharing = live
                .iter()
                .filter(|other| other.worker.is_some() && other.memory == live[i].memory)
                .count();
            live[i].prepare_next(&steps, sharing, &bar);
        }
        // …then times it in rounds, one run of every column that wants one.
        loop {
            let wanting: Vec<usize> = (0..live.len()).filter(|&i| live[i].wants_run()).collect();
            if wanting.is_empty() {
                break;
            }
            for i in wanting {
                live[i].run(&bar);
            }
        }
        for climb in &mut live {
            climb.finish_point();
        }
        let done: usize = live.iter().map(|c| c.result.points.len()).sum();
        bar.set_position(done.min(runnable * plan.ladder.len()) as u64);
    }
    bar.finish_and_clear();

    let devices: Vec<ScaleColumn> = live
        .into_iter()
        .map(|climb| {
            let mut result = climb.result;
            // Every point has its line, tried or not.
            let tried = result.points.len();
            result.points.extend(plan.ladder[tried..].iter().map(|p| {
                PointResult::not_measured(p.size, PointStatus::NotRun, result.reason.clone())
            }));
            result
        })
        .collect();
    let settings = &plan.settings;
    ScaleReport {
        schema_version: SCHEMA_VERSION,
        kind: "scale".to_string(),
        redacted: false,
        hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
        config: ScaleConfig {
            seed: settings.seed,
            lr: settings.lr,
            max_epoch_s: settings.max_epoch_s,
            timing: settings.timing,
            kernels: settings.kernels,
            flop_formula: FLOP_FORMULA.to_string(),
            cuda_matmul: cuda_matmul(),
        },
        complete: devices
            .iter()
            .all(|d| d.status != DeviceStatus::Interrupted),
        ladder: plan.ladder.clone(),
        devices,
        crossovers: Vec::new(),
        verdict: Vec::new(),
        notes: plan.columns.notes.clone(),
    }
}

/// One column on its way up the ladder: its worker while it climbs, and what it measured.
struct Climb {
    result: ScaleColumn,
    worker: Option<Worker>,
    check: ScaleCheck,
    timing: PointTiming,
    /// Which memory the column's points live in: columns on the same device share it.
    memory: Memory,
    /// The point being timed: what the worker prepared, its runs, and how many it may take.
    current: Option<(PointPrepared, Vec<PointRun>, Runs)>,
}

/// Where a column's data lives: host memory (every CPU column) or one GPU's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Memory {
    Host,
    Gpu(usize),
}

impl Climb {
    /// Starts the column's worker and reads its `ready`; a column that cannot start says why.
    fn start(plan: &ScalePlan, column: &Column, bar: &ProgressBar) -> Self {
        let settings = &plan.settings;
        let mut climb = Self {
            result: ScaleColumn::new(column.device, column.framework),
            worker: None,
            check: ScaleCheck::new(settings.timing),
            timing: settings.timing,
            memory: match column.device {
                DeviceSpec::Cuda { ordinal } => Memory::Gpu(ordinal),
                _ => Memory::Host,
            },
            current: None,
        };
        let result = &mut climb.result;
        if let DeviceSpec::Cpu { threads } = column.device
            && let Some((gflops, basis)) = peaks::cpu_threads_peak(&plan.cpu, threads)
        {
            result.peak_gflops = Some(gflops);
            result.peak_basis = Some(basis);
        }
        let command = match starting(column) {
            Ok(command) => command,
            Err((status, reason)) => {
                result.status = status;
                result.reason = Some(reason);
                return climb;
            }
        };
        bar.set_message(format!("{}: starting", result.label));
        let request = WorkerRequest::new(ScaleRequest::Scale(LadderRequest {
            device: column.device,
            seed: settings.seed,
            lr: settings.lr,
            timing: settings.timing,
            kernels: settings.kernels,
        }));
        let mut worker = match Worker::start(command, &request) {
            Ok(worker) => worker,
            Err(failure) => {
                climb.fail(&failure, None);
                return climb;
            }
        };
        loop {
            match climb.next_event(&mut worker, bar) {
                Ok(ScaleEvent::Ready {
                    facts,
                    memory_free_mib,
                }) => {
                    let result = &mut climb.result;
                    if column.device.is_accelerator()
                        && let Some((gflops, basis)) = gpu_peak(plan, facts.name.as_deref())
                    {
                        result.peak_gflops = Some(gflops);
                        result.peak_basis = Some(basis);
                    }
                    result.facts = Some(facts);
                    result.memory_free_mib = memory_free_mib;
                    climb.worker = Some(worker);
                    return climb;
                }
                Ok(_) => {}
                Err(failure) => {
                    climb.fail(&failure, None);
                    return climb;
                }
            }
        }
    }

    /// Asks the worker to prepare the next point the device can take (`sharing` columns hold
    /// their points in its memory at once); when there is none, tells it to finish.
    fn prepare_next(&mut self, steps: &Steps, sharing: usize, bar: &ProgressBar) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let step = match steps.next(
            &mut self.result.points,
            self.result.memory_free_mib,
            sharing,
        ) {
            Some(size) => LadderStep::Point {
                size,
                max_epoch_s: steps.max_epoch_s,
            },
            None => LadderStep::Finish,
        };
        self.check.asked(step);
        worker.send(&step);
        let asked = match step {
            LadderStep::Point { size, .. } => {
                bar.set_message(format!("{}: {size}", self.result.label));
                Some(size)
            }
            _ => None,
        };
        loop {
            match self.next_event(&mut worker, bar) {
                Ok(ScaleEvent::Prepared(prepared)) => {
                    let runs = self.timing.runs.within(
                        self.timing.work_s,
                        prepared.epochs as f64 * prepared.warm_epoch_s,
                    );
                    self.current = Some((prepared, Vec::new(), runs));
                    self.worker = Some(worker);
                    return;
                }
                Ok(ScaleEvent::Finished) => return,
                Ok(_) => {}
                Err(failure) => return self.fail(&failure, asked),
            }
        }
    }

    /// Whether the point being timed wants another run.
    fn wants_run(&self) -> bool {
        self.worker.is_some()
            && self.current.as_ref().is_some_and(|(prepared, runs, most)| {
                let seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
                !prepared.over_budget && most.wants_more(&seconds)
            })
    }

    /// One timed run of the point being timed.
    fn run(&mut self, bar: &ProgressBar) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        self.check.asked(LadderStep::Run);
        worker.send(&LadderStep::Run);
        loop {
            match self.next_event(&mut worker, bar) {
                Ok(ScaleEvent::Timed(run)) => {
                    if let Some((_, runs, _)) = &mut self.current {
                        runs.push(run);
                    }
                    self.worker = Some(worker);
                    return;
                }
                Ok(_) => {}
                Err(failure) => {
                    let asked = self.current.take().map(|(p, ..)| p.size);
                    return self.fail(&failure, asked);
                }
            }
        }
    }

    /// The point being timed goes into the report.
    fn finish_point(&mut self) {
        if let Some((prepared, runs, _)) = self.current.take() {
            self.result.points.push(point_result(prepared, &runs));
        }
    }

    /// The worker's next event, checked.
    fn next_event(
        &mut self,
        worker: &mut Worker,
        bar: &ProgressBar,
    ) -> Result<ScaleEvent, WorkerFailure> {
        let event: ScaleEvent = worker.event(&|| bar.tick())?;
        self.check.check(&event).map_err(WorkerFailure::Invalid)?;
        Ok(event)
    }

    /// The worker failed or was stopped while measuring `asked` (if anything): the column keeps
    /// the points it finished.
    fn fail(&mut self, failure: &WorkerFailure, asked: Option<crate::engine::synthetic::Size>) {
        self.worker = None;
        self.current = None;
        let result = &mut self.result;
        let (status, failure) = failure.outcome(result.facts.is_some());
        result.status = status;
        // The point in progress failed with the worker; the others were never tried.
        if let Some(size) = asked.filter(|size| result.points.iter().all(|p| p.size != *size)) {
            let status = match result.status {
                DeviceStatus::Interrupted => PointStatus::NotRun,
                _ => PointStatus::Failed,
            };
            result.points.push(PointResult::not_measured(
                size,
                status,
                Some(failure.clone()),
            ));
        }
        result.reason = Some(failure);
    }
}

/// What a worker prepared and timed, as a point of the report (its derived figures come later).
fn point_result(m: PointPrepared, runs: &[PointRun]) -> PointResult {
    let status = if m.over_budget {
        PointStatus::OverBudget
    } else {
        PointStatus::Measured
    };
    let memory = runs
        .iter()
        .filter_map(|r| r.memory_mib)
        .chain(m.memory_mib)
        .max_by(f64::total_cmp);
    PointResult {
        size: m.size,
        status,
        reason: m
            .over_budget
            .then(|| format!("an epoch took {}", readable::micros(m.warm_epoch_s * 1e6))),
        kernels: Some(m.kernels),
        epochs: (!m.over_budget).then_some(m.epochs),
        epoch_s: Spread::of(runs.iter().map(|r| r.seconds / m.epochs.max(1) as f64)),
        cold_epoch_s: Some(m.cold_epoch_s),
        gflops: None,
        peak_share: None,
        first_loss: m.first_loss,
        final_loss: runs.last().and_then(|r| r.final_loss),
        memory_mib: memory,
    }
}

/// The GPU's FP32 peak, found by the name the worker saw among the GPUs NVML listed.
fn gpu_peak(plan: &ScalePlan, name: Option<&str>) -> Option<(f64, String)> {
    let gpu = plan
        .columns
        .gpus
        .devices
        .iter()
        .find(|g| g.name.is_some() && g.name.as_deref() == name)?;
    peaks::gpu_peak(gpu)
}

/// Which point comes next for one column.
struct Steps<'a> {
    ladder: &'a [LadderPoint],
    max_epoch_s: f64,
}

impl<'a> Steps<'a> {
    fn new(ladder: &'a [LadderPoint], max_epoch_s: f64) -> Self {
        Self {
            ladder,
            max_epoch_s,
        }
    }

    /// The next point to train, after adding to `points` the ones the device cannot take (its
    /// free memory is shared by `sharing` columns holding a point at once); `None` when the climb
    /// is over.
    fn next(
        &self,
        points: &mut Vec<PointResult>,
        free_mib: Option<f64>,
        sharing: usize,
    ) -> Option<Size> {
        // The last measured point's epoch, scaled by the work, predicts the next one's: an upper
        // bound while the device gets more efficient with size, which it does up the ladder.
        let last = points.iter().rev().find_map(|p| {
            let seconds = p.median_s()?;
            let flop = analysis::flop_of(self.ladder, p.size)?;
            Some((seconds, flop))
        });
        let over_budget = points.last().map(|p| p.status) == Some(PointStatus::OverBudget);
        while let Some(point) = self.ladder.get(points.len()) {
            let size = point.size;
            if over_budget {
                points.push(PointResult::not_measured(
                    size,
                    PointStatus::OverBudget,
                    Some("a smaller point was already over budget".to_string()),
                ));
                continue;
            }
            if let Some((seconds, flop)) = last {
                let predicted = seconds * point.flop_per_epoch / flop;
                if predicted > self.max_epoch_s {
                    let why = format!(
                        "about {} per epoch predicted (cap {})",
                        readable::micros(predicted * 1e6),
                        readable::micros(self.max_epoch_s * 1e6)
                    );
                    points.push(PointResult::not_measured(
                        size,
                        PointStatus::OverBudget,
                        Some(why),
                    ));
                    continue;
                }
            }
            let needed = point.memory_needed_mib * sharing.max(1) as f64;
            if let Some(free) = free_mib
                && needed > free * MEMORY_HEADROOM
            {
                let why = if sharing > 1 {
                    format!(
                        "needs about {} for {sharing} columns at once, {} free",
                        readable::memory(needed),
                        readable::memory(free)
                    )
                } else {
                    format!(
                        "needs about {}, {} free",
                        readable::memory(needed),
                        readable::memory(free)
                    )
                };
                points.push(PointResult::not_measured(
                    size,
                    PointStatus::NeedsMemory,
                    Some(why),
                ));
                continue;
            }
            return Some(size);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::ladder;

    fn ladder() -> Vec<LadderPoint> {
        ladder::points(&ladder::DEFAULT)
    }

    fn measured(size: crate::engine::synthetic::Size, seconds: f64) -> PointResult {
        PointResult {
            epoch_s: Spread::of([seconds]),
            ..PointResult::not_measured(size, PointStatus::Measured, None)
        }
    }

    #[test]
    fn a_device_stops_climbing_when_the_next_epoch_would_be_over_budget() {
        let ladder = ladder();
        let steps = Steps::new(&ladder, 1.0);
        let mut points = Vec::new();
        assert_eq!(steps.next(&mut points, None, 1), Some(ladder[0].size));
        // The sixth point at 0.1 s per epoch: the seventh (8× the work) would take 0.8 s.
        points.extend(ladder[..6].iter().map(|p| measured(p.size, 0.1)));
        assert_eq!(steps.next(&mut points, None, 1), Some(ladder[6].size));
        // At 0.2 s per epoch it would take 1.6 s: the rest are over budget.
        points.push(measured(ladder[6].size, 0.2));
        assert_eq!(steps.next(&mut points, None, 1), None);
        assert_eq!(points.len(), 9);
        assert!(points[7].reason.as_deref().unwrap().contains("predicted"));
        assert_eq!(points[8].status, PointStatus::OverBudget);
    }

    #[test]
    fn a_point_that_needs_more_memory_than_is_free_is_skipped_and_said_so() {
        let ladder = ladder();
        let steps = Steps::new(&ladder, 100.0);
        let mut points: Vec<PointResult> =
            ladder[..7].iter().map(|p| measured(p.size, 1e-3)).collect();
        // 1 GiB free: the 0.5 GiB point fits, the 2.1 GiB one does not.
        assert_eq!(
            steps.next(&mut points, Some(1024.0), 1),
            Some(ladder[7].size)
        );
        points.push(measured(ladder[7].size, 1e-2));
        assert_eq!(steps.next(&mut points, Some(1024.0), 1), None);
        assert_eq!(points[8].status, PointStatus::NeedsMemory);
        assert_eq!(
            points[8].reason.as_deref(),
            Some("needs about 2.1 GiB, 1.0 GiB free")
        );
    }

    #[test]
    fn after_a_point_measured_over_budget_nothing_bigger_is_tried() {
        let ladder = ladder();
        let steps = Steps::new(&ladder, 1.0);
        let mut points = vec![PointResult::not_measured(
            ladder[0].size,
            PointStatus::OverBudget,
            None,
        )];
        assert_eq!(steps.next(&mut points, None, 1), None);
        assert!(
            points[1..]
                .iter()
                .all(|p| p.status == PointStatus::OverBudget)
        );
    }
}
