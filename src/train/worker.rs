//! The worker side of the protocol (`hwbench worker`, `hwbench-cuda worker`): introduce itself,
//! read one request, run the session, and report each step as it is measured.

use std::io::{BufRead, Write};

use super::protocol::{Message, PROTOCOL, TimedRuns, WorkerRequest};
use super::session;

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
    let mut send = |message: &Message| -> anyhow::Result<()> {
        serde_json::to_writer(&mut out, message)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    };
    let hello = Message::Hello {
        protocol: PROTOCOL,
        hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: backend.to_string(),
    };
    if send(&hello).is_err() {
        return 1;
    }
    let result = read_request().and_then(|request| {
        request.session.check(&request.data).map_err(|why| {
            anyhow::anyhow!("hwbench asked for something this worker refuses: {why}")
        })?;
        request.session.device.prepare_process();
        // A panic (a library's bug, a thread that cannot start) is reported like any error.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            session::measure(
                &request.session,
                &request.data,
                |event| send(&Message::Event(event)),
                read_line_as::<TimedRuns>,
            )
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
            let _ = send(&Message::Error { message });
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

fn read_request() -> anyhow::Result<WorkerRequest> {
    let request: WorkerRequest = read_line_as()?;
    if request.protocol != PROTOCOL {
        anyhow::bail!(
            "hwbench speaks worker protocol {}, this worker speaks {PROTOCOL}: install matching versions",
            request.protocol
        );
    }
    Ok(request)
}
