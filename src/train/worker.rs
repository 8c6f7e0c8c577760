//! The worker protocol: how `hwbench` runs one device's session in another process and hears back.
//!
//! The CPU columns run in `hwbench worker` (this executable, with candle's thread count set in the
//! environment, which candle reads per call), the CUDA columns in the `hwbench-cuda` companion.
//! Protocol, version [`PROTOCOL`]: the parent writes one JSON [`WorkerRequest`] line to the
//! worker's stdin; the worker answers with JSON [`Message`] lines on stdout: `hello` first, then
//! `ready`, one `run` per timed run, and `finished` — or `error` with a one-line reason.
//!
//! The PyTorch columns (`--with-pytorch`) speak the same protocol from a Python script shipped
//! inside hwbench (see [`super::pytorch`]); a script worker also gets the prepared rows in the
//! request, so that it trains on exactly the same data without a copy of hwbench's split.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::data::Dataset;
use super::session::{self, DeviceFacts, DeviceOutcome, Event, RunResult, SessionRequest};

/// Bumped whenever a message changes shape.
pub const PROTOCOL: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerRequest {
    pub protocol: u32,
    pub session: SessionRequest,
    /// The split and scaled rows; sent to script workers only (hwbench's own prepare them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Dataset>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Message {
    Hello {
        protocol: u32,
        hwbench_version: String,
        /// "cpu" or "cuda": what this worker executable can train on.
        backend: String,
    },
    Ready(DeviceFacts),
    Run(RunResult),
    Finished(DeviceOutcome),
    Error {
        message: String,
    },
}

/// The worker side: answer one request read from stdin. Returns the process exit code.
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
        session::run(&request.session, |event| {
            send(&match event {
                Event::Ready(facts) => Message::Ready(facts),
                Event::Run(run) => Message::Run(run),
                Event::Finished(outcome) => Message::Finished(outcome),
            })
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

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Longest silence tolerated between two messages before the worker is called hung.
    pub timeout: Duration,
    /// A script for `program` (an interpreter): written to a private temporary folder for the
    /// run and passed as the last argument.
    pub script: Option<&'static str>,
}

/// Why a device's worker gave no (complete) result.
#[derive(Debug, thiserror::Error)]
pub enum WorkerFailure {
    #[error("could not start {program}: {error}")]
    Spawn {
        program: String,
        error: std::io::Error,
    },
    #[error("{0}")]
    Exited(String),
    #[error("no answer for {0} s; the worker was stopped (hung?)")]
    Hung(u64),
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Reported(String),
    #[error("interrupted")]
    Interrupted,
}

/// Runs one worker to the end, handing each message after `hello` to `on_message`.
pub fn run(
    command: &WorkerCommand,
    request: &SessionRequest,
    interrupted: &AtomicBool,
    mut on_message: impl FnMut(Message),
) -> Result<(), WorkerFailure> {
    let spawn_failure = |error| WorkerFailure::Spawn {
        program: command.program.display().to_string(),
        error,
    };
    // Owned for the whole run: dropping it removes the script.
    let script = command
        .script
        .map(write_script)
        .transpose()
        .map_err(spawn_failure)?;
    let mut child = Command::new(&command.program)
        .args(&command.args)
        .args(script.iter().map(|(_, path)| path))
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_failure)?;
    let lines = read_lines(&mut child);
    let stderr = collect_stderr(&mut child);

    let request = WorkerRequest {
        protocol: PROTOCOL,
        session: request.clone(),
        data: script
            .is_some()
            .then(|| super::data::prepare(request.config.split_seed)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A worker that died at start-up closes its stdin; what it said on stderr explains why.
        let mut line = serde_json::to_string(&request).expect("a request serialises");
        line.push('\n');
        let _ = stdin.write_all(line.as_bytes());
    }

    let outcome = converse(&lines, command.timeout, interrupted, &mut on_message);
    if outcome.is_err() {
        let _ = child.kill();
    }
    let status = child.wait();
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => {
            // A process the worker left behind may hold stderr open: wait for it only briefly.
            let said = stderr
                .recv_timeout(Duration::from_secs(2))
                .ok()
                .and_then(|text| last_line(&text))
                .map(|line| without_path(&line, &command.program));
            let how = match status {
                Ok(status) => describe_exit(status),
                Err(e) => e.to_string(),
            };
            Err(WorkerFailure::Exited(match said {
                Some(line) => format!("{how}: {line}"),
                None => how,
            }))
        }
        Err(failure) => Err(failure),
    }
}

/// Reads messages until `finished` (Ok(true)) or the worker's stdout closes (Ok(false)).
fn converse(
    lines: &mpsc::Receiver<String>,
    timeout: Duration,
    interrupted: &AtomicBool,
    on_message: &mut impl FnMut(Message),
) -> Result<bool, WorkerFailure> {
    let mut greeted = false;
    let mut last_heard = Instant::now();
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(WorkerFailure::Interrupted);
        }
        let line = match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if last_heard.elapsed() > timeout {
                    return Err(WorkerFailure::Hung(timeout.as_secs()));
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(false),
        };
        last_heard = Instant::now();
        let message: Message = serde_json::from_str(&line).map_err(|e| {
            WorkerFailure::Protocol(format!(
                "the worker said something hwbench does not understand ({e}): {}",
                truncate(&line, 80)
            ))
        })?;
        match message {
            Message::Hello { protocol, .. } if protocol != PROTOCOL => {
                return Err(WorkerFailure::Protocol(format!(
                    "the worker speaks protocol {protocol}, hwbench speaks {PROTOCOL}: install matching versions"
                )));
            }
            Message::Hello { .. } => greeted = true,
            _ if !greeted => {
                return Err(WorkerFailure::Protocol(
                    "the worker did not introduce itself (no hello message)".to_string(),
                ));
            }
            Message::Error { message } => return Err(WorkerFailure::Reported(message)),
            Message::Finished(outcome) => {
                on_message(Message::Finished(outcome));
                return Ok(true);
            }
            other => on_message(other),
        }
    }
}

/// Writes `text` into a new folder only this user can enter, so that no one can swap the script
/// between writing and running it.
fn write_script(text: &str) -> std::io::Result<(tempfile::TempDir, PathBuf)> {
    let folder = tempfile::Builder::new().prefix("hwbench-").tempdir()?;
    let path = folder.path().join("hwbench_worker.py");
    std::fs::write(&path, text)?;
    Ok((folder, path))
}

fn read_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    }
    receiver
}

/// Collects what the worker writes on stderr; the text arrives when the worker closes it.
fn collect_stderr(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
            let _ = sender.send(text);
        });
    }
    receiver
}

/// The loader names the program by its full path; the file name says as much without revealing
/// where it is installed (a path can carry a user name into a public report).
pub fn without_path(line: &str, program: &std::path::Path) -> String {
    match program.file_name() {
        Some(name) => line.replace(&program.display().to_string(), &name.to_string_lossy()),
        None => line.to_string(),
    }
}

/// Why a short helper command gave no output.
#[derive(Debug)]
pub enum QuickRunError {
    Spawn(std::io::Error),
    TimedOut,
}

/// Runs a short command (stdin closed) to the end, killing it after `timeout`. Its outputs are read
/// while it runs, so a chatty command cannot block on a full pipe.
pub fn run_with_timeout(
    command: &mut Command,
    timeout: Duration,
) -> Result<std::process::Output, QuickRunError> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(QuickRunError::Spawn)?;
    let id = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(timeout) {
        Ok(output) => output.map_err(QuickRunError::Spawn),
        Err(_) => {
            // SAFETY: kill(2) on the pid of the child we started and have not reaped yet.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
            Err(QuickRunError::TimedOut)
        }
    }
}

/// The last line with something on it, trimmed and cut to 200 characters.
pub fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| truncate(l.trim(), 200))
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(127), _) => {
            "the worker could not start (exit code 127: a shared library is missing)".to_string()
        }
        (Some(code), _) => format!("the worker stopped early with exit code {code}"),
        (None, Some(signal)) => format!("the worker crashed (signal {signal})"),
        (None, None) => "the worker stopped early".to_string(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}
