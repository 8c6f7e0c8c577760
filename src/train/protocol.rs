//! The worker protocol, version [`PROTOCOL`]: what the parent asks a worker and what the worker
//! answers, as JSON lines — and the checks both sides make, since either may be something else
//! than hwbench (a stale companion, a broken Python install, a hostile file).
//!
//! The parent writes one [`WorkerRequest`] line to the worker's stdin; the worker answers on stdout
//! with `hello` first, then the [`Event`]s of its session (`ready`, `progress` at least every
//! [`HEARTBEAT`] while training, one `run` per timed run, `finished`), or `error` with a one-line
//! reason. hwbench's own workers, the `hwbench-cuda` companion and the PyTorch script
//! (`pytorch_worker.py`) all speak it.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::data::{CLASSES, Dataset, FEATURES};
use super::results::{DeviceFacts, DeviceOutcome, RunResult};
use super::{DeviceSpec, SyncPolicy, TrainConfig, limits};
pub use crate::companion::PROTOCOL;

/// A worker says it is alive at least this often while it trains.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Most points of a loss curve a worker sends (the first, the last and the highest included).
pub const CURVE_POINTS: usize = 2048;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerRequest {
    pub protocol: u32,
    pub session: SessionRequest,
    /// The split and scaled rows, prepared once by the parent for every worker.
    pub data: Dataset,
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

/// One line from a worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Message {
    Hello {
        protocol: u32,
        hwbench_version: String,
        /// "cpu", "cuda" or "pytorch": what this worker executable can train with.
        backend: String,
    },
    Error {
        message: String,
    },
    /// What the session measured (tagged by `event` like the others).
    #[serde(untagged)]
    Event(Event),
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
            r#"{"event":"hello","protocol":2,"hwbench_version":"0.1.0","backend":"cpu"}"#,
        )
        .unwrap();
        assert!(matches!(hello, Message::Hello { protocol: 2, .. }));
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
