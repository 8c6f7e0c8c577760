//! The worker protocol's envelope, version [`PROTOCOL`]: JSON lines between hwbench and a worker
//! process, whatever its job, and the checks every job's messages share. Each job adds its own
//! request and events (`crate::train::protocol` for `compare`, `crate::scale::protocol` for
//! `scale`), since either side may be something else than hwbench (a stale companion, a broken
//! Python install, a hostile file).
//!
//! The parent writes one [`WorkerRequest`] line to the worker's stdin (`{"protocol": 4, "job":
//! "compare" | "scale", …}`); the worker answers on stdout with `hello` first, then the events of
//! its job, or `error` with a one-line reason. hwbench's own workers, the `hwbench-cuda`
//! companion and the PyTorch script (`pytorch_worker.py`) all speak it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The version every worker speaks: hwbench's `worker`, the `hwbench-cuda` companion (also in its
/// `describe` answer) and `pytorch_worker.py`.
pub const PROTOCOL: u32 = 4;

/// A worker says it is alive at least this often while it trains.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// The first line a worker reads: the protocol version and its job, `J` (tagged by `job`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerRequest<J> {
    pub protocol: u32,
    #[serde(flatten)]
    pub job: J,
}

impl<J> WorkerRequest<J> {
    pub fn new(job: J) -> Self {
        Self {
            protocol: PROTOCOL,
            job,
        }
    }
}

/// One line from a worker; `E` is its job's events.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Message<E> {
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

/// `value` is a finite number ≥ 0, or the line that says it is not.
pub fn non_negative(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{name} {value} is not a finite number ≥ 0"))
    }
}

/// A loss, when there is one, is finite and ≥ 0.
pub fn optional_loss(name: &str, value: Option<f32>) -> Result<(), String> {
    match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => {
            Err(format!("{name} {v} is not a finite loss ≥ 0"))
        }
        _ => Ok(()),
    }
}

/// A learning rate every worker accepts: > 0 and finite in float32, what the model computes in.
pub fn check_lr(lr: f64) -> Result<(), String> {
    if lr > 0.0 && (lr as f32).is_finite() {
        Ok(())
    } else {
        Err(format!(
            "the learning rate {lr} is not a number > 0 that float32 holds"
        ))
    }
}
