//! The `compare` job of the worker protocol (`train-compare`): the request, the events of one
//! session, and what the parent checks of them. The envelope (version, `hello`, `error`) is
//! `engine::protocol`'s.
//!
//! The worker warms up every policy and answers `ready`, `progress` at least every `HEARTBEAT`
//! while training, and `calibrated`; then it waits for the parent's [`SessionStep`]s: each
//! `round` is one timed `run` of every policy (in the request's order, numbered by round), and
//! `finish` is answered with `finished`. Between steps the worker is idle, so the parent can
//! interleave the rounds of several workers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::results::DeviceOutcome;
use crate::engine::conversation::Checks;
use crate::engine::data::{CLASSES, Dataset, FEATURES};
use crate::engine::device::DeviceSpec;
use crate::engine::measured::{DeviceFacts, RunResult};
use crate::engine::model::InitWeights;
use crate::engine::protocol::{check_lr, non_negative, optional_loss};
use crate::engine::{SyncPolicy, limits};

/// Most points of a loss curve a worker sends (the first, the last and the highest included).
pub const CURVE_POINTS: usize = 2048;

/// The training problem, identical on every device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub hidden: usize,
    pub lr: f64,
    pub epochs: u64,
    /// `random_state` of scikit-learn's `train_test_split(test_size=0.2)`.
    pub split_seed: u32,
    pub init: InitWeights,
}

/// The job as the envelope carries it: `{"job": "compare", "session": …, "data": …}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum CompareRequest {
    /// One device's `train-compare` session.
    Compare(Box<CompareJob>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareJob {
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
    /// Epochs of the untimed warm-up run before each policy's timed runs; a warm-up also ends
    /// after [`WARMUP_LIMIT`].
    pub warmup_epochs: u64,
}

/// A warm-up run ends after its epochs or this long, whichever comes first (at least 10 epochs).
pub const WARMUP_LIMIT: Duration = Duration::from_secs(1);

/// What the parent tells a calibrated worker to do next.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SessionStep {
    /// One timed run of every policy, each `epochs` long.
    Round { epochs: u64 },
    /// No more rounds: report the outcome (`finished`) and exit.
    Finish,
}

/// What a session reports, in order: `ready` once, `progress` and `run` as it trains, `finished`
/// last.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Ready(DeviceFacts),
    Progress(Progress),
    /// After the warm-ups: microseconds per epoch of each policy, in the order of the request's
    /// policies.
    Calibrated {
        per_epoch_us: Vec<f64>,
    },
    Run(RunResult),
    Finished(DeviceOutcome),
}

/// Where a session is: in the warm-up (`repeat` 0) or a round's timed run of a policy, at an
/// epoch.
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
        within("warm-up epochs", self.warmup_epochs, c.epochs)?;
        within("hidden units", c.hidden as u64, limits::HIDDEN as u64)?;
        within(
            "sync policies",
            self.policies.len() as u64,
            limits::POLICIES as u64,
        )?;
        if let DeviceSpec::Cpu { threads } = self.device {
            within("threads", threads as u64, limits::THREADS as u64)?;
        }
        check_lr(c.lr)?;
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
    ready: bool,
    calibrated: bool,
    /// The last step the parent sent, and the policies whose run of the current round came.
    asked: Option<SessionStep>,
    round: u32,
    runs_this_round: BTreeSet<u64>,
}

impl<'a> EventCheck<'a> {
    pub fn new(request: &'a SessionRequest) -> Self {
        Self {
            request,
            ready: false,
            calibrated: false,
            asked: None,
            round: 0,
            runs_this_round: BTreeSet::new(),
        }
    }
}

impl Checks<SessionStep, Event> for EventCheck<'_> {
    /// The parent sent `step`.
    fn asked(&mut self, step: SessionStep) {
        if let SessionStep::Round { .. } = step {
            self.round += 1;
            self.runs_this_round.clear();
        }
        self.asked = Some(step);
    }

    /// The first thing wrong with `event`, in one line.
    fn check(&mut self, event: &Event) -> Result<(), String> {
        let epochs = self.request.config.epochs;
        match event {
            Event::Calibrated { per_epoch_us } => {
                if !self.ready
                    || self.calibrated
                    || per_epoch_us.len() != self.request.policies.len()
                {
                    return Err("the worker calibrated out of turn".to_string());
                }
                for &cost in per_epoch_us {
                    if !(cost.is_finite() && cost > 0.0) {
                        return Err(format!("an epoch cost {cost} µs, not a positive time"));
                    }
                }
                self.calibrated = true;
            }
            Event::Ready(facts) => {
                non_negative("open_ms", facts.open_ms)?;
                for (name, value) in [
                    ("setup_ms", facts.setup_ms),
                    ("first_epoch_ms", facts.first_epoch_ms),
                ] {
                    // A session measures both: a compare worker that leaves them out is broken.
                    non_negative(name, value.ok_or(format!("{name} was not measured"))?)?;
                }
                self.ready = true;
            }
            Event::Progress(progress) => {
                self.known_policy(progress.policy)?;
                if progress.repeat > self.round || progress.epoch > epochs {
                    return Err(format!(
                        "the worker reported progress past what was asked: run {} at epoch {}",
                        progress.repeat, progress.epoch
                    ));
                }
            }
            Event::Run(run) => self.check_run(run)?,
            Event::Finished(outcome) => {
                if self.asked != Some(SessionStep::Finish) {
                    return Err("the worker finished before it was told to".to_string());
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
}

impl EventCheck<'_> {
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
        let Some(SessionStep::Round { epochs }) = self.asked else {
            return Err("the worker reported a run it was not asked for".to_string());
        };
        if run.repeat != self.round {
            return Err(format!(
                "the worker reported a run of round {} during round {}",
                run.repeat, self.round
            ));
        }
        if !self.runs_this_round.insert(run.policy.every) {
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

#[cfg(test)]
mod tests {
    use super::*;

    type Message = crate::engine::protocol::Message<Event>;

    #[test]
    fn events_and_control_messages_share_one_tag() {
        let hello: Message = serde_json::from_str(
            r#"{"event":"hello","protocol":4,"hwbench_version":"0.1.0","backend":"cpu"}"#,
        )
        .unwrap();
        assert!(matches!(hello, Message::Hello { protocol: 4, .. }));
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
