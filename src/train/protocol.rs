//! The worker protocol, version [`PROTOCOL`]: what the parent asks a worker and what the worker
//! answers, as JSON lines — and the checks both sides make, since either may be something else
//! than hwbench (a stale companion, a broken Python install, a hostile file).
//!
//! The parent writes one [`WorkerRequest`] line to the worker's stdin; the worker answers on stdout
//! with `hello` first, then the events of its job, or `error` with a one-line reason. Two jobs:
//!
//! - `compare` (`train-compare`): the [`Event`]s of one session — `ready`, `progress` at least
//!   every [`HEARTBEAT`] while training, `calibrated` (answered with [`TimedRuns`]), one `run` per
//!   timed run, `finished`.
//! - `scale` (`hwbench scale`): `ready` with the device's free memory, then for each
//!   [`NextPoint`] the parent sends, `progress` heartbeats and one `point`; `finished` after the
//!   parent sends a `NextPoint` without a size ([`ScaleEvent`]).
//!
//! hwbench's own workers, the `hwbench-cuda` companion and the PyTorch script
//! (`pytorch_worker.py`) all speak it.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::data::{CLASSES, Dataset, FEATURES};
pub use super::fused::KernelChoice;
use super::results::{DeviceFacts, DeviceOutcome, RunResult};
use super::synthetic::Size;
use super::{DeviceSpec, SyncPolicy, TrainConfig, limits};
pub use crate::companion::PROTOCOL;

/// A worker says it is alive at least this often while it trains.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Most points of a loss curve a worker sends (the first, the last and the highest included).
pub const CURVE_POINTS: usize = 2048;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerRequest {
    pub protocol: u32,
    #[serde(flatten)]
    pub job: Job,
}

/// What a worker is asked to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// One device's `train-compare` session.
    Compare(Box<CompareJob>),
    /// One device's climb up a `hwbench scale` ladder, a point at a time.
    Scale(LadderRequest),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareJob {
    pub session: SessionRequest,
    /// The split and scaled rows, prepared once by the parent for every worker.
    pub data: Dataset,
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
/// `warmup_s`), then `repeats` timed runs of at least `min_epochs` epochs and `min_run_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointTiming {
    pub repeats: u32,
    pub min_epochs: u64,
    pub min_run_s: f64,
    pub warmup_s: f64,
}

/// The parent's word for the next step of a ladder: train this size (unless an epoch takes longer
/// than `max_epoch_s`), or, without a size, finish.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct NextPoint {
    pub size: Option<Size>,
    pub max_epoch_s: f64,
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
    Point(PointMeasured),
    Finished,
}

/// One point as a worker measured it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointMeasured {
    pub size: Size,
    /// The kernels that ran: "fused", "stock" (candle's operations), "PyTorch".
    pub kernels: String,
    /// The first (cold) epoch, in seconds.
    pub cold_epoch_s: f64,
    /// An epoch after the cold one, from the warm-up, in seconds.
    pub warm_epoch_s: f64,
    /// Set when an epoch took longer than the parent's `max_epoch_s`: no timed runs follow.
    #[serde(default)]
    pub over_budget: bool,
    /// Epochs of each timed run.
    pub epochs: u64,
    /// Each timed run's wall time, in seconds (clock read after synchronising the device).
    pub runs_s: Vec<f64>,
    /// The loss of the first epoch (the same on every device up to rounding: a check of the
    /// arithmetic at this size) and of the last epoch of the last run.
    pub first_loss: Option<f32>,
    pub final_loss: Option<f32>,
    /// The worker's memory after the point (see `memory_kind` of the device), in MiB.
    pub memory_mib: Option<f64>,
}

/// What one device's session does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRequest {
    pub device: DeviceSpec,
    pub config: TrainConfig,
    pub policies: Vec<SyncPolicy>,
    pub repeats: u32,
    /// Epochs of the untimed warm-up run before each policy's timed runs; a warm-up also ends
    /// after [`WARMUP_LIMIT`].
    pub warmup_epochs: u64,
    /// After the warm-ups, report what an epoch cost (`calibrated`) and read how many epochs to
    /// time ([`TimedRuns`]) from stdin; otherwise time `config.epochs`.
    #[serde(default)]
    pub calibrate: bool,
}

/// A warm-up run ends after its epochs or this long, whichever comes first (at least 10 epochs).
pub const WARMUP_LIMIT: Duration = Duration::from_secs(1);

/// The parent's answer to `calibrated`: how many epochs each timed run trains.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct TimedRuns {
    pub epochs: u64,
}

/// One line from a worker; `E` is its job's events ([`Event`] or [`ScaleEvent`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Message<E = Event> {
    Hello {
        protocol: u32,
        hwbench_version: String,
        /// "cpu", "cuda" or "pytorch": what this worker executable can train with.
        backend: String,
    },
    Error {
        message: String,
    },
    /// What the job measured (tagged by `event` like the others).
    #[serde(untagged)]
    Event(E),
}

/// What a session reports, in order: `ready` once, `progress` and `run` as it trains, `finished`
/// last.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Ready(DeviceFacts),
    Progress(Progress),
    /// After the warm-ups, when asked to calibrate: microseconds per epoch of each policy, in the
    /// order of the request's policies.
    Calibrated {
        per_epoch_us: Vec<f64>,
    },
    Run(RunResult),
    Finished(DeviceOutcome),
}

/// Where a session is: in the warm-up (`repeat` 0) or a timed run of a policy, at an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub policy: SyncPolicy,
    pub repeat: u32,
    /// Epochs of this run done so far.
    pub epoch: u64,
}

impl SessionRequest {
    /// Whether a worker can do what it is asked, before it allocates anything.
    pub fn check(&self, data: &Dataset) -> Result<(), String> {
        let c = &self.config;
        let within = |name: &str, value: u64, max: u64| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} {value} is not between 1 and {max}"))
            }
        };
        within("epochs", c.epochs, limits::EPOCHS)?;
        within("warm-up epochs", self.warmup_epochs, limits::EPOCHS)?;
        within("hidden units", c.hidden as u64, limits::HIDDEN as u64)?;
        within(
            "repeats",
            u64::from(self.repeats),
            u64::from(limits::REPEATS),
        )?;
        within(
            "sync policies",
            self.policies.len() as u64,
            limits::POLICIES as u64,
        )?;
        if let DeviceSpec::Cpu { threads } = self.device {
            within("threads", threads as u64, limits::THREADS as u64)?;
        }
        if !(c.lr.is_finite() && c.lr > 0.0) {
            return Err(format!(
                "the learning rate {} is not a finite number > 0",
                c.lr
            ));
        }
        let h = c.hidden;
        let init = &c.init;
        if init.hidden != h
            || init.inputs != FEATURES
            || init.classes != CLASSES
            || init.fc1_weight.len() != h * FEATURES
            || init.fc1_bias.len() != h
            || init.fc2_weight.len() != CLASSES * h
            || init.fc2_bias.len() != CLASSES
        {
            return Err(format!("the initial weights do not fit {h} hidden units"));
        }
        let all_weights = [
            &init.fc1_weight,
            &init.fc1_bias,
            &init.fc2_weight,
            &init.fc2_bias,
        ];
        if all_weights.iter().any(|w| w.iter().any(|v| !v.is_finite())) {
            return Err("the initial weights hold NaN or infinite values".to_string());
        }
        for (x, y, split) in [
            (&data.train_x, &data.train_y, "training"),
            (&data.test_x, &data.test_y, "test"),
        ] {
            if y.is_empty() || x.len() != y.len() * FEATURES {
                return Err(format!(
                    "the {split} rows do not have {FEATURES} features each"
                ));
            }
            if y.iter().any(|&class| class as usize >= CLASSES) {
                return Err(format!("a {split} label is not one of {CLASSES} classes"));
            }
            if x.iter().any(|v| !v.is_finite()) {
                return Err(format!("the {split} rows hold NaN or infinite values"));
            }
        }
        Ok(())
    }
}

/// What the parent checks of every event a worker sends for `request`: a worker's numbers are
/// believed only when they are finite, within bounds, and what was asked for.
pub struct EventCheck<'a> {
    request: &'a SessionRequest,
    runs: BTreeSet<(u64, u32)>,
    ready: bool,
    /// Epochs of each timed run: the request's, or what the parent answered to `calibrated`.
    epochs: u64,
}

impl<'a> EventCheck<'a> {
    pub fn new(request: &'a SessionRequest) -> Self {
        Self {
            request,
            runs: BTreeSet::new(),
            ready: false,
            epochs: request.config.epochs,
        }
    }

    /// The parent told the worker to time `epochs` per run.
    pub fn expect_epochs(&mut self, epochs: u64) {
        self.epochs = epochs;
    }

    /// The first thing wrong with `event`, in one line.
    pub fn check(&mut self, event: &Event) -> Result<(), String> {
        let epochs = self.request.config.epochs;
        match event {
            Event::Calibrated { per_epoch_us } => {
                if !self.request.calibrate || per_epoch_us.len() != self.request.policies.len() {
                    return Err("the worker calibrated when it was not asked to".to_string());
                }
                for &cost in per_epoch_us {
                    if !(cost.is_finite() && cost > 0.0) {
                        return Err(format!("an epoch cost {cost} µs, not a positive time"));
                    }
                }
            }
            Event::Ready(facts) => {
                for (name, value) in [
                    ("open_ms", facts.open_ms),
                    ("setup_ms", facts.setup_ms),
                    ("first_epoch_ms", facts.first_epoch_ms),
                ] {
                    non_negative(name, value)?;
                }
                self.ready = true;
            }
            Event::Progress(progress) => {
                self.known_policy(progress.policy)?;
                if progress.repeat > self.request.repeats || progress.epoch > epochs {
                    return Err(format!(
                        "the worker reported progress past what was asked: run {} at epoch {}",
                        progress.repeat, progress.epoch
                    ));
                }
            }
            Event::Run(run) => self.check_run(run)?,
            Event::Finished(outcome) => {
                let expected = self.request.policies.len() * self.request.repeats as usize;
                if self.runs.len() != expected {
                    return Err(format!(
                        "the worker finished after {} of {expected} timed runs",
                        self.runs.len()
                    ));
                }
                if let Some(accuracy) = outcome.test_accuracy
                    && !(0.0..=1.0).contains(&accuracy)
                {
                    return Err(format!("test accuracy {accuracy} is not between 0 and 1"));
                }
                if let Some(mib) = outcome.peak_memory_mib {
                    non_negative("peak_memory_mib", mib)?;
                }
                optional_loss("final_loss", outcome.final_loss)?;
                if outcome.loss_curve.len() > CURVE_POINTS + 2 {
                    return Err(format!(
                        "the loss curve has {} points, more than {CURVE_POINTS}",
                        outcome.loss_curve.len()
                    ));
                }
                for &(epoch, loss) in outcome.loss_curve.iter().chain(&outcome.loss_peak) {
                    if epoch == 0 || epoch > epochs || !loss.is_finite() {
                        return Err(format!(
                            "a loss curve point ({epoch}, {loss}) is not usable"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn known_policy(&self, policy: SyncPolicy) -> Result<(), String> {
        if self.request.policies.contains(&policy) {
            Ok(())
        } else {
            Err(format!(
                "the worker reported sync policy {}, which was not asked for",
                policy.every
            ))
        }
    }

    fn check_run(&mut self, run: &RunResult) -> Result<(), String> {
        self.known_policy(run.policy)?;
        if !self.ready {
            return Err("the worker reported a run before it was ready".to_string());
        }
        let epochs = self.epochs;
        if run.repeat == 0 || run.repeat > self.request.repeats {
            return Err(format!(
                "run {} is not one of the repeats asked for",
                run.repeat
            ));
        }
        if !self.runs.insert((run.policy.every, run.repeat)) {
            return Err(format!(
                "the worker reported run {} of {} twice",
                run.repeat,
                run.policy.label()
            ));
        }
        let stopped_early = run.diverged_at.is_some_and(|e| e >= 1 && e <= epochs);
        if run.epochs == 0 || run.epochs > epochs || (run.epochs < epochs && !stopped_early) {
            return Err(format!(
                "a run trained {} epochs, not the {epochs} asked for",
                run.epochs
            ));
        }
        if let Some(epoch) = run.diverged_at
            && (epoch == 0 || epoch > run.epochs)
        {
            return Err(format!(
                "a run diverged at epoch {epoch}, beyond its {} epochs",
                run.epochs
            ));
        }
        if run.total_s.is_nan() || run.total_s <= 0.0 || run.total_s.is_infinite() {
            return Err(format!("a run took {} s, not a positive time", run.total_s));
        }
        non_negative("readback_s", run.readback_s)?;
        if run.syncs == 0 || run.syncs > run.epochs + 1 {
            return Err(format!(
                "a run made {} syncs in {} epochs",
                run.syncs, run.epochs
            ));
        }
        optional_loss("final_loss", run.final_loss)
    }
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
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "the learning rate {} is not a finite number > 0",
                self.lr
            ));
        }
        let t = &self.timing;
        if !(1..=limits::REPEATS).contains(&t.repeats) || !(1..=1_000_000).contains(&t.min_epochs) {
            return Err(format!(
                "{} repeats of at least {} epochs is not a timing this worker runs",
                t.repeats, t.min_epochs
            ));
        }
        for (name, seconds) in [("min_run_s", t.min_run_s), ("warmup_s", t.warmup_s)] {
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
    /// The point asked for and not yet answered.
    asked: Option<NextPoint>,
}

impl ScaleCheck {
    pub fn new(timing: PointTiming) -> Self {
        Self {
            timing,
            ready: false,
            asked: None,
        }
    }

    /// The parent asked for `next`.
    pub fn asked(&mut self, next: NextPoint) {
        self.asked = Some(next);
    }

    /// The first thing wrong with `event`, in one line.
    pub fn check(&mut self, event: &ScaleEvent) -> Result<(), String> {
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
            ScaleEvent::Point(point) => {
                let asked = self.asked.take().and_then(|next| next.size);
                if !self.ready || asked != Some(point.size) {
                    return Err(format!(
                        "the worker measured {}, which was not asked for",
                        point.size
                    ));
                }
                self.check_point(point)?;
            }
            ScaleEvent::Finished => {
                if self.asked.is_some_and(|next| next.size.is_some()) {
                    return Err("the worker finished before measuring its point".to_string());
                }
            }
        }
        Ok(())
    }

    fn check_point(&self, point: &PointMeasured) -> Result<(), String> {
        non_negative("cold_epoch_s", point.cold_epoch_s)?;
        non_negative("warm_epoch_s", point.warm_epoch_s)?;
        let expected = if point.over_budget {
            0
        } else {
            self.timing.repeats as usize
        };
        if point.runs_s.len() != expected {
            return Err(format!(
                "the worker sent {} timed runs of {}, not {expected}",
                point.runs_s.len(),
                point.size
            ));
        }
        if !point.over_budget && point.epochs < self.timing.min_epochs {
            return Err(format!(
                "the worker timed {} epochs per run, fewer than the {} asked for",
                point.epochs, self.timing.min_epochs
            ));
        }
        for &seconds in &point.runs_s {
            if !(seconds.is_finite() && seconds > 0.0) {
                return Err(format!("a run took {seconds} s, not a positive time"));
            }
        }
        if let Some(mib) = point.memory_mib {
            non_negative("memory_mib", mib)?;
        }
        optional_loss("first_loss", point.first_loss)?;
        optional_loss("final_loss", point.final_loss)
    }
}

fn non_negative(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{name} {value} is not a finite number ≥ 0"))
    }
}

fn optional_loss(name: &str, value: Option<f32>) -> Result<(), String> {
    match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => {
            Err(format!("{name} {v} is not a finite loss ≥ 0"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_control_messages_share_one_tag() {
        let hello: Message = serde_json::from_str(
            r#"{"event":"hello","protocol":3,"hwbench_version":"0.1.0","backend":"cpu"}"#,
        )
        .unwrap();
        assert!(matches!(hello, Message::Hello { protocol: 3, .. }));
        let ready: Message = serde_json::from_str(
            r#"{"event":"ready","name":"x","open_ms":1.0,"setup_ms":2.0,"first_epoch_ms":3.0}"#,
        )
        .unwrap();
        assert!(matches!(ready, Message::Event(Event::Ready(_))));
        let line = serde_json::to_string(&ready).unwrap();
        assert!(line.starts_with(r#"{"event":"ready""#), "{line}");
        assert!(serde_json::from_str::<Message>(r#"{"event":"weather"}"#).is_err());
    }
}
