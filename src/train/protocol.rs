//! The worker protocol, version [`PROTOCOL`]: what the parent asks a worker and what the worker
//! answers, as JSON lines.
//!
//! The parent writes one [`WorkerRequest`] line to the worker's stdin; the worker answers on stdout
//! with `hello` first, then the [`Event`]s of its session (`ready`, one `run` per timed run,
//! `finished`), or `error` with a one-line reason. hwbench's own workers, the `hwbench-cuda`
//! companion and the PyTorch script (`pytorch_worker.py`) all speak it.

use serde::{Deserialize, Serialize};

use super::data::Dataset;
use super::results::{DeviceFacts, DeviceOutcome, RunResult};
use super::{DeviceSpec, SyncPolicy, TrainConfig};
pub use crate::companion::PROTOCOL;

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
    /// Epochs of the untimed warm-up run before each policy's timed runs.
    pub warmup_epochs: u64,
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

/// What a session reports, in order: `ready` once, `run` per timed run, `finished` last.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Ready(DeviceFacts),
    Run(RunResult),
    Finished(DeviceOutcome),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_control_messages_share_one_tag() {
        let hello: Message = serde_json::from_str(
            r#"{"event":"hello","protocol":1,"hwbench_version":"0.1.0","backend":"cpu"}"#,
        )
        .unwrap();
        assert!(matches!(hello, Message::Hello { protocol: 1, .. }));
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
