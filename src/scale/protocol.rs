//! The `scale` job of the worker protocol (`hwbench scale`): the request, the events of one
//! device's climb up the ladder, and what the parent checks of them. The envelope (version,
//! `hello`, `error`) is `engine::protocol`'s.
//!
//! The worker says `ready` with the device's free memory, then answers the parent's
//! [`LadderStep`]s: `point` makes that size's data (kept until the job ends), times its cold epoch
//! and a warm-up, and is answered with `prepared` (the epochs of each timed run, or over budget);
//! each `run` is one timed run of a prepared size, answered with `timed`; `finish` is answered with
//! `finished`. `progress` heartbeats come while it trains. Between steps the worker is idle, so
//! the parent can interleave the runs of every point of several workers.

use serde::{Deserialize, Serialize};

use crate::engine::conversation::Checks;
use crate::engine::device::DeviceSpec;
use crate::engine::fused::KernelChoice;
use crate::engine::limits;
use crate::engine::measured::DeviceFacts;
use crate::engine::protocol::{check_lr, non_negative, optional_loss};
use crate::engine::runs::Runs;
use crate::engine::synthetic::Size;

/// The job as the envelope carries it: `{"job": "scale", "device": …, "seed": …, …}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum ScaleRequest {
    /// One device's climb up a ladder, a point at a time.
    Scale(LadderRequest),
}

/// What a `scale` worker needs for every point: each makes its own data from `seed`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LadderRequest {
    pub device: DeviceSpec,
    pub seed: u32,
    pub lr: f64,
    pub timing: PointTiming,
    /// Which CPU kernels candle uses (the PyTorch worker ignores it).
    #[serde(default)]
    pub kernels: KernelChoice,
}

/// How each point is timed: a warm-up of at least one epoch after the cold one (up to
/// `warmup_s`), then timed runs of at least one epoch, each about `work_s` / `runs.max` long:
/// `runs.min` of them, then more while the median's confidence interval is wider than
/// ±`runs.target`, as long as they fit in `work_s` (and at most `runs.max`); where a claim hangs
/// on the point, up to `work_s` more (`Runs::deciding`, at most `runs.ceiling()` in all).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PointTiming {
    pub runs: Runs,
    pub work_s: f64,
    pub warmup_s: f64,
}

/// The parent's word for the next step of a ladder.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LadderStep {
    /// Prepare this size (unless an epoch takes longer than `max_epoch_s`): answered `prepared`.
    Point { size: Size, max_epoch_s: f64 },
    /// One timed run of a prepared size: answered `timed`.
    Run { size: Size },
    /// No more points: answered `finished`.
    Finish,
}

/// What a `scale` worker reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ScaleEvent {
    Ready {
        #[serde(flatten)]
        facts: DeviceFacts,
        /// Memory free for this worker on the device when it opened, in MiB (RAM: available
        /// memory within the cgroup limit; GPU: free device memory).
        memory_free_mib: Option<f64>,
    },
    /// A heartbeat while a point trains.
    Progress {
        epoch: u64,
    },
    Prepared(PointPrepared),
    Timed(PointRun),
    Finished,
}

/// A point made ready to time, as a worker measured it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointPrepared {
    pub size: Size,
    /// The kernels that run: "fused", "stock" (candle's operations), "PyTorch".
    pub kernels: String,
    /// The first (cold) epoch, in seconds.
    pub cold_epoch_s: f64,
    /// An epoch after the cold one, from the warm-up, in seconds.
    pub warm_epoch_s: f64,
    /// Set when an epoch took longer than `max_epoch_s`: no timed runs follow.
    #[serde(default)]
    pub over_budget: bool,
    /// Epochs of each timed run (0 when over budget).
    pub epochs: u64,
    /// The loss of the first epoch (the same on every device up to rounding: a check of the
    /// arithmetic at this size).
    pub first_loss: Option<f32>,
    /// The worker's memory after preparing, in MiB.
    pub memory_mib: Option<f64>,
}

/// One timed run of a prepared point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRun {
    pub size: Size,
    /// Wall time of the run, in seconds (clock read after synchronising the device).
    pub seconds: f64,
    /// The loss of the run's last epoch.
    pub final_loss: Option<f32>,
    /// The worker's memory after the run, in MiB.
    pub memory_mib: Option<f64>,
}

impl LadderRequest {
    /// Whether a worker can do what it is asked, before it opens the device.
    pub fn check(&self) -> Result<(), String> {
        if let DeviceSpec::Cpu { threads } = self.device
            && !(1..=limits::THREADS).contains(&threads)
        {
            return Err(format!(
                "threads {threads} is not between 1 and {}",
                limits::THREADS
            ));
        }
        check_lr(self.lr)?;
        let t = &self.timing;
        let runs = t.runs;
        let usable = (1..=limits::REPEATS).contains(&runs.min)
            && (runs.min..=limits::REPEATS).contains(&runs.max)
            && runs.target.is_finite()
            && runs.target >= 0.0;
        if !usable {
            return Err(format!(
                "{} to {} runs until ±{} is not a timing this worker runs",
                runs.min, runs.max, runs.target
            ));
        }
        for (name, seconds) in [("work_s", t.work_s), ("warmup_s", t.warmup_s)] {
            if !(seconds.is_finite() && (0.0..=3600.0).contains(&seconds)) {
                return Err(format!(
                    "{name} {seconds} is not between 0 and 3600 seconds"
                ));
            }
        }
        Ok(())
    }
}

/// What the parent checks of every event a `scale` worker sends: the point it asked for, timed
/// as asked, with finite numbers.
pub struct ScaleCheck {
    timing: PointTiming,
    ready: bool,
    /// The last step sent and not yet answered.
    asked: Option<LadderStep>,
    /// Each size prepared for timed runs, with its runs so far.
    runs: Vec<(Size, u32)>,
}

impl ScaleCheck {
    pub fn new(timing: PointTiming) -> Self {
        Self {
            timing,
            ready: false,
            asked: None,
            runs: Vec::new(),
        }
    }
}

impl Checks<LadderStep, ScaleEvent> for ScaleCheck {
    /// The parent asked for `step`.
    fn asked(&mut self, step: LadderStep) {
        self.asked = Some(step);
    }

    /// The first thing wrong with `event`, in one line.
    fn check(&mut self, event: &ScaleEvent) -> Result<(), String> {
        match event {
            ScaleEvent::Ready {
                facts,
                memory_free_mib,
            } => {
                non_negative("open_ms", facts.open_ms)?;
                if let Some(mib) = memory_free_mib {
                    non_negative("memory_free_mib", *mib)?;
                }
                self.ready = true;
            }
            ScaleEvent::Progress { .. } => {}
            ScaleEvent::Prepared(point) => {
                let asked = match self.asked.take() {
                    Some(LadderStep::Point { size, .. }) => Some(size),
                    _ => None,
                };
                if !self.ready || asked != Some(point.size) {
                    return Err(format!(
                        "the worker prepared {}, which was not asked for",
                        point.size
                    ));
                }
                non_negative("cold_epoch_s", point.cold_epoch_s)?;
                non_negative("warm_epoch_s", point.warm_epoch_s)?;
                if !point.over_budget && point.epochs == 0 {
                    return Err(format!(
                        "the worker would time runs of no epoch at {}",
                        point.size
                    ));
                }
                if let Some(mib) = point.memory_mib {
                    non_negative("memory_mib", mib)?;
                }
                optional_loss("first_loss", point.first_loss)?;
                if !point.over_budget {
                    self.runs.push((point.size, 0));
                }
            }
            ScaleEvent::Timed(run) => {
                let asked = match self.asked.take() {
                    Some(LadderStep::Run { size }) => Some(size),
                    _ => None,
                };
                let prepared = self.runs.iter_mut().find(|(size, _)| *size == run.size);
                let Some((_, count)) = prepared.filter(|_| asked == Some(run.size)) else {
                    return Err(format!(
                        "the worker timed a run of {}, which was not asked for",
                        run.size
                    ));
                };
                *count += 1;
                if *count > self.timing.runs.ceiling() {
                    return Err(format!(
                        "the worker timed more than the {} runs a point may take",
                        self.timing.runs.ceiling()
                    ));
                }
                if !(run.seconds.is_finite() && run.seconds > 0.0) {
                    return Err(format!("a run took {} s, not a positive time", run.seconds));
                }
                if let Some(mib) = run.memory_mib {
                    non_negative("memory_mib", mib)?;
                }
                optional_loss("final_loss", run.final_loss)?;
            }
            ScaleEvent::Finished => {
                if self.asked.take() != Some(LadderStep::Finish) {
                    return Err("the worker finished before it was told to".to_string());
                }
            }
        }
        Ok(())
    }
}
