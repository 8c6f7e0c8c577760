//! The worker side of the protocol (`hwbench worker`, `hwbench-cuda worker`): introduce itself,
//! read one request, run the session, and report each step as it is measured.

use std::io::{BufRead, Write};

use super::protocol::{Message, PROTOCOL, WorkerRequest};
use super::session;

/// Answers one request read from stdin. Returns the process exit code.
pub fn serve() -> u8 {
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
        request.session.device.prepare_process();
        session::measure(&request.session, &request.data, |event| {
            send(&Message::Event(event))
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

fn read_request() -> anyhow::Result<WorkerRequest> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let request: WorkerRequest = serde_json::from_str(&line)
        .map_err(|e| anyhow::anyhow!("unreadable request from hwbench: {e}"))?;
    if request.protocol != PROTOCOL {
        anyhow::bail!(
            "hwbench speaks worker protocol {}, this worker speaks {PROTOCOL}: install matching versions",
            request.protocol
        );
    }
    Ok(request)
}
