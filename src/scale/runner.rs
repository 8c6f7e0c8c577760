//! The parent side of `hwbench scale`: one worker per column, all alive at once but never
//! computing at the same time. First the climb: every column in turn prepares its next point (its
//! data, a cold epoch and a warm-up) until it reaches the top of what it can take. Then the timed
//! runs come in rounds over the whole ladder — one run of every point of every column, A, B, C,
//! A, B, C … — until each figure's median is known precisely enough (`engine::runs`), so that a
//! drift of the machine, however long, weighs on every column and every point alike.
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
use crate::progress::Progress;
use crate::readable;
use crate::stats::{self, Spread};

/// A point is tried only when its estimated memory fits in this share of what was free.
const MEMORY_HEADROOM: f64 = 0.9;

/// Runs every column up the ladder and gathers the measurements (`analysis` works out the rest).
/// Stops early, keeping the finished points, on a stop signal. `job` names it in the progress
/// lines.
pub fn run(plan: &ScalePlan, job: &str) -> ScaleReport {
    let bar = Progress::new(job);
    bar.preparing(
        "starting workers",
        format!("{} column(s)", plan.columns.columns.len()),
    );
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
    // The climb, one point of every column at a time.
    bar.preparing(
        "climbing the ladder",
        format!("{} sizes", plan.ladder.len()),
    );
    while live.iter().any(|c| c.climbing) {
        for i in 0..live.len() {
            // Columns on the same device hold their points in its memory at once.
            let sharing = live
                .iter()
                .filter(|other| other.worker.is_some() && other.memory == live[i].memory)
                .count();
            live[i].prepare_next(&steps, sharing, &bar);
        }
    }
    // Rounds over every point and column, while any figure wants another run.
    bar.phase("timed runs", "round 1");
    let mut round = 0;
    loop {
        round += 1;
        let mut ran = false;
        // Each round starts one column later than the last: no column always runs first.
        let columns = live.len().max(1);
        for index in 0..plan.ladder.len() {
            for k in 0..live.len() {
                let climb = &mut live[(k + round as usize) % columns];
                if climb.wants_run(index) {
                    climb.run(index, &bar);
                    ran = true;
                }
            }
        }
        if !ran {
            break;
        }
        bar.set_message(format!("round {round}"));
        let rounds = u64::from(plan.settings.timing.runs.max.max(1));
        bar.set_position((runnable * plan.ladder.len()) as u64 * round.min(rounds) / rounds);
    }
    // Where two columns are still undecided (`stats::undecided`: no measurable difference yet,
    // but their fastest runs apart beyond the verdict's threshold), a claim (a crossover) hangs
    // on more runs: those columns take more rounds of that point, interleaved as before, until it
    // is decided or their extra runs are spent.
    loop {
        let undecided = undecided_points(&live);
        if undecided.is_empty() {
            break;
        }
        round += 1;
        bar.phase(
            "deciding close calls",
            format!("round {round}: {} point(s)", undecided.len()),
        );
        for (index, climbs) in undecided {
            for k in 0..climbs.len() {
                let climb = &mut live[climbs[(k + round as usize) % climbs.len()]];
                climb.run(index, &bar);
                if let Some(timed) = climb.timed.iter_mut().find(|t| t.index == index) {
                    timed.deciding = timed.deciding.saturating_sub(1);
                }
            }
        }
    }
    for climb in &mut live {
        climb.finish(&bar);
    }
    bar.finish_and_clear();

    let devices: Vec<ScaleColumn> = live
        .into_iter()
        .map(|climb| {
            let mut result = climb.result;
            for timed in climb.timed {
                result.points[timed.index] = point_result(timed.prepared, &timed.runs);
            }
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

/// One column on its way up the ladder: its worker while it lives, and what it measured.
struct Climb {
    result: ScaleColumn,
    worker: Option<Worker>,
    /// Still preparing points.
    climbing: bool,
    check: ScaleCheck,
    timing: PointTiming,
    /// Which memory the column's points live in: columns on the same device share it.
    memory: Memory,
    /// Every point prepared for timed runs, with its runs so far.
    timed: Vec<Timed>,
}

/// A prepared point of a column and its timed runs.
struct Timed {
    /// Where the point is in the column's `points`.
    index: usize,
    prepared: PointPrepared,
    runs: Vec<PointRun>,
    most: Runs,
    /// Runs it may still take if a claim hangs on it (`Runs::deciding`).
    deciding: u32,
}

impl Timed {
    /// The point's epoch times so far.
    fn epoch_s(&self) -> Option<Spread> {
        epoch_times(&self.prepared, &self.runs)
    }
}

/// A point's time per epoch over its timed runs.
fn epoch_times(prepared: &PointPrepared, runs: &[PointRun]) -> Option<Spread> {
    let epochs = prepared.epochs.max(1) as f64;
    Spread::of(runs.iter().map(|r| r.seconds / epochs))
}

/// The points at which two columns of the same framework are still undecided
/// (`stats::undecided`) and both can take more runs: each point's index and those columns. Columns
/// that run the same one-thread epoch there (`analysis::same_epoch`) have nothing to decide.
fn undecided_points(live: &[Climb]) -> Vec<(usize, Vec<usize>)> {
    let deciding = |climb: &Climb, index: usize| {
        climb
            .timed
            .iter()
            .find(|t| t.index == index && t.deciding > 0)
            .filter(|_| climb.worker.is_some())
            .and_then(Timed::epoch_s)
    };
    let points = live
        .iter()
        .map(|c| c.result.points.len())
        .max()
        .unwrap_or(0);
    let mut found = Vec::new();
    for index in 0..points {
        let mut climbs = Vec::new();
        for (i, a) in live.iter().enumerate() {
            for (j, b) in live.iter().enumerate().skip(i + 1) {
                if a.result.framework == b.result.framework
                    && !analysis::same_epoch(&a.result, &b.result, index)
                    && let (Some(sa), Some(sb)) = (deciding(a, index), deciding(b, index))
                    && stats::undecided(&sa, &sb, stats::VERDICT_THRESHOLD)
                {
                    climbs.extend([i, j]);
                }
            }
        }
        climbs.sort_unstable();
        climbs.dedup();
        if !climbs.is_empty() {
            found.push((index, climbs));
        }
    }
    found
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
            climbing: false,
            check: ScaleCheck::new(settings.timing),
            timing: settings.timing,
            memory: match column.device {
                DeviceSpec::Cuda { ordinal } => Memory::Gpu(ordinal),
                _ => Memory::Host,
            },
            timed: Vec::new(),
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
        let check = &mut climb.check;
        let ready = worker.step(
            None::<LadderStep>,
            check,
            &|| bar.tick(),
            |event| match event {
                ScaleEvent::Ready {
                    facts,
                    memory_free_mib,
                } => Some((facts, memory_free_mib)),
                _ => None,
            },
        );
        match ready {
            Ok((facts, memory_free_mib)) => {
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
                climb.climbing = true;
            }
            Err(failure) => climb.fail(&failure, None),
        }
        climb
    }

    /// Asks the worker to prepare the next point the device can take (`sharing` columns hold
    /// their points in its memory at once); when there is none, the climb is over.
    fn prepare_next(&mut self, steps: &Steps, sharing: usize, bar: &ProgressBar) {
        if !self.climbing {
            return;
        }
        let Some(mut worker) = self.worker.take() else {
            self.climbing = false;
            return;
        };
        let held: f64 = self
            .timed
            .iter()
            .filter_map(|t| steps.memory_of(t.prepared.size))
            .sum();
        // What the columns sharing the memory already hold (each about as much as this one).
        let free = self
            .result
            .memory_free_mib
            .map(|free| free - held * sharing as f64);
        let Some(size) = steps.next(&mut self.result.points, free, sharing) else {
            self.climbing = false;
            self.worker = Some(worker);
            return;
        };
        let step = LadderStep::Point {
            size,
            max_epoch_s: steps.max_epoch_s,
        };
        bar.set_message(format!("{}: {size}", self.result.label));
        let check = &mut self.check;
        let prepared = worker.step(Some(step), check, &|| bar.tick(), |event| match event {
            ScaleEvent::Prepared(prepared) => Some(prepared),
            _ => None,
        });
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(failure) => return self.fail(&failure, Some(size)),
        };
        let index = self.result.points.len();
        if prepared.over_budget {
            self.result.points.push(point_result(prepared, &[]));
        } else {
            // Until its runs come, the warm-up's epoch stands for the point's (the next point's
            // time is predicted from it).
            let mut point = point_result(prepared.clone(), &[]);
            point.epoch_s = Spread::of([prepared.warm_epoch_s]);
            self.result.points.push(point);
            let per_run = prepared.epochs as f64 * prepared.warm_epoch_s;
            let runs = self.timing.runs;
            self.timed.push(Timed {
                index,
                prepared,
                runs: Vec::new(),
                most: runs.within(self.timing.work_s, per_run),
                deciding: runs.deciding(self.timing.work_s, per_run),
            });
        }
        self.worker = Some(worker);
    }

    /// Whether the point at `index` of the ladder wants another run.
    fn wants_run(&self, index: usize) -> bool {
        self.worker.is_some()
            && self.timed.iter().any(|t| {
                let seconds: Vec<f64> = t.runs.iter().map(|r| r.seconds).collect();
                t.index == index && t.most.wants_more(&seconds)
            })
    }

    /// One timed run of the point at `index`.
    fn run(&mut self, index: usize, bar: &ProgressBar) {
        let Some(size) = self.result.points.get(index).map(|p| p.size) else {
            return;
        };
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let step = LadderStep::Run { size };
        let check = &mut self.check;
        let timed = worker.step(Some(step), check, &|| bar.tick(), |event| match event {
            ScaleEvent::Timed(run) => Some(run),
            _ => None,
        });
        match timed {
            Ok(run) => {
                if let Some(timed) = self.timed.iter_mut().find(|t| t.index == index) {
                    timed.runs.push(run);
                }
                self.worker = Some(worker);
            }
            Err(failure) => self.fail(&failure, None),
        }
    }

    /// Tells the worker the job is done.
    fn finish(&mut self, bar: &ProgressBar) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let check = &mut self.check;
        let finished = worker.step(Some(LadderStep::Finish), check, &|| bar.tick(), |event| {
            matches!(event, ScaleEvent::Finished).then_some(())
        });
        if let Err(failure) = finished {
            self.fail(&failure, None);
        }
    }

    /// The worker failed or was stopped while measuring `asked` (if anything): the column keeps
    /// the points it finished.
    fn fail(&mut self, failure: &WorkerFailure, asked: Option<Size>) {
        self.worker = None;
        self.climbing = false;
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
    let epoch_s = epoch_times(&m, runs);
    PointResult {
        size: m.size,
        status,
        reason: m
            .over_budget
            .then(|| format!("an epoch took {}", readable::micros(m.warm_epoch_s * 1e6))),
        kernels: Some(m.kernels),
        epochs: (!m.over_budget).then_some(m.epochs),
        epoch_s,
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

    /// The memory a point's data and model take, as estimated, in MiB.
    fn memory_of(&self, size: Size) -> Option<f64> {
        self.ladder
            .iter()
            .find(|p| p.size == size)
            .map(|p| p.memory_needed_mib)
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
