//! A worker process (`hwbench worker`, `hwbench-cuda worker`): introduce itself, read one
//! request, hand it to its job's worker side (`train::worker` for a `train-compare` session,
//! `scale::worker` for a `scale` ladder), and report each step as it is measured — or one `error`
//! line, whatever went wrong.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::engine::protocol::{Message, PROTOCOL, WorkerRequest};
use crate::scale::protocol::{LadderRequest, LadderStep};
use crate::train::protocol::{CompareJob, SessionStep};

/// Every job a worker can be asked to do, as the envelope carries it (`"job": "compare"` or
/// `"scale"`). The parent writes the same line through its job's one-variant request type.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// One device's `train-compare` session.
    Compare(Box<CompareJob>),
    /// One device's climb up a `hwbench scale` ladder, a point at a time.
    Scale(LadderRequest),
}

/// Answers one request read from stdin. Returns the process exit code.
pub fn serve() -> u8 {
    // Panics are reported on the protocol (below), not as a message on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let backend = if candle_core::utils::cuda_is_available() {
        "cuda"
    } else {
        "cpu"
    };
    let mut out = std::io::stdout().lock();
    let mut send = |message: &dyn erased::Line| -> anyhow::Result<()> {
        out.write_all(message.line()?.as_bytes())?;
        out.flush()?;
        Ok(())
    };
    let hello: Message<()> = Message::Hello {
        protocol: PROTOCOL,
        hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: backend.to_string(),
    };
    if send(&hello).is_err() {
        return 1;
    }
    let result = read_request().and_then(|request| {
        let refused =
            |why: String| anyhow::anyhow!("hwbench asked for something this worker refuses: {why}");
        let device = match &request.job {
            Job::Compare(job) => {
                job.session.check(&job.data).map_err(refused)?;
                job.session.device
            }
            Job::Scale(ladder) => {
                ladder.check().map_err(refused)?;
                ladder.device
            }
        };
        device.prepare_process();
        // A panic (a library's bug, a thread that cannot start) is reported like any error.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &request.job {
            Job::Compare(job) => crate::train::worker::run_session(
                &job.session,
                &job.data,
                |event| send(&Message::Event(event)),
                read_line_as::<SessionStep>,
            ),
            Job::Scale(ladder) => crate::scale::worker::run_ladder(
                ladder,
                |event| send(&Message::Event(event)),
                read_line_as::<LadderStep>,
            ),
        }))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown cause");
            Err(anyhow::anyhow!("the worker failed: {why}"))
        })
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            // One line: candle's errors can carry a backtrace after the message.
            let message = format!("{e:#}");
            let message = message
                .lines()
                .next()
                .unwrap_or("failed")
                .trim()
                .to_string();
            let _ = send(&Message::<()>::Error { message });
            1
        }
    }
}

/// The next line of stdin, as JSON of type `T`.
fn read_line_as<T: serde::de::DeserializeOwned>() -> anyhow::Result<T> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("unreadable request from hwbench: {e}"))
}

fn read_request() -> anyhow::Result<WorkerRequest<Job>> {
    let request: WorkerRequest<Job> = read_line_as()?;
    if request.protocol != PROTOCOL {
        anyhow::bail!(
            "hwbench speaks worker protocol {}, this worker speaks {PROTOCOL}: install matching versions",
            request.protocol
        );
    }
    Ok(request)
}

/// One protocol message as a JSON line, whatever its event type.
mod erased {
    pub trait Line {
        fn line(&self) -> anyhow::Result<String>;
    }

    impl<T: serde::Serialize> Line for T {
        fn line(&self) -> anyhow::Result<String> {
            let mut line = serde_json::to_string(self)?;
            line.push('\n');
            Ok(line)
        }
    }
}
