//! Talking to one worker process, for any job: start it in its own process group, send the
//! request, read its JSON lines (each checked by the caller), answer when the job needs an answer,
//! and make sure nothing it started outlives the conversation.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::columns::{Column, WorkerCommand};
use super::measured::DeviceStatus;
use super::protocol::{Message, PROTOCOL, WorkerRequest};
use crate::process::{self, describe_exit, last_line, signal_name, without_path};
use crate::redact::outside_line;

/// Reasons and worker messages are cut to this many characters.
pub const REASON_CHARS: usize = 300;

/// Why a column's worker gave no (complete) result.
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
    #[error("the worker sent an impossible result: {0}")]
    Invalid(String),
    #[error("interrupted ({})", signal_name(*.0))]
    Stopped(i32),
}

impl WorkerFailure {
    /// The status and reason of a column whose worker failed; `started`: the column had measured
    /// something before.
    pub fn outcome(&self, started: bool) -> (DeviceStatus, String) {
        match self {
            Self::Stopped(signal) => (
                DeviceStatus::Interrupted,
                format!("interrupted ({})", signal_name(*signal)),
            ),
            failure => {
                let status = if started {
                    DeviceStatus::Failed
                } else {
                    DeviceStatus::NotRun
                };
                (status, outside_line(&failure.to_string(), REASON_CHARS))
            }
        }
    }
}

/// A planned column's worker command, or the status and reason of a column that does not start:
/// a stop signal came before it, or its worker cannot run here.
pub fn starting(column: &Column) -> Result<&WorkerCommand, (DeviceStatus, String)> {
    if let Some(signal) = process::stop_signal() {
        return Err((
            DeviceStatus::Interrupted,
            format!("interrupted ({}) before it started", signal_name(signal)),
        ));
    }
    column
        .worker
        .as_ref()
        .map_err(|reason| (DeviceStatus::NotRun, reason.clone()))
}

/// What the parent checks of one worker's conversation in a job: each step it sent (`S`), and each
/// event (`E`) against what was asked — a worker's numbers are believed only once they pass.
pub trait Checks<S, E> {
    /// The parent sent `step`.
    fn asked(&mut self, step: S);
    /// The first thing wrong with `event`, in one line.
    fn check(&mut self, event: &E) -> Result<(), String>;
}

/// One live worker process: started with its request, then read an event at a time and answered
/// when its job needs an answer. Several can be alive at once, each waiting for its turn (a
/// worker waiting for an answer is silent and idle). Dropping it ends the worker and everything it
/// started.
pub struct Worker {
    child: Child,
    program: std::path::PathBuf,
    program_name: String,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<Vec<u8>>,
    stdin: Option<std::process::ChildStdin>,
    timeout: Duration,
    greeted: bool,
}

impl Worker {
    /// Starts `command` in its own process group and sends it `request`.
    pub fn start<J: Serialize>(
        command: &WorkerCommand,
        request: &WorkerRequest<J>,
    ) -> Result<Self, WorkerFailure> {
        let program_name = command.program.file_name().map_or_else(
            || command.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let spawn_failure = |error| WorkerFailure::Spawn {
            program: program_name.clone(),
            error,
        };
        // A script goes on the command line (`python3 -I -c SCRIPT`): no file for anyone to swap
        // between writing and running it, and none left behind however hwbench ends.
        let script = command.script.map(|text| ["-c", text]);
        let mut child = process::spawn_in_own_group(
            Command::new(&command.program)
                .args(&command.args)
                .args(script.iter().flatten())
                .envs(command.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .map_err(spawn_failure)?;
        let pipes = read_lines(&mut child)
            .and_then(|lines| Ok((lines, process::read_to_end_in_thread(child.stderr.take())?)));
        let (lines, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(error) => {
                process::kill_group(&child);
                let _ = child.wait();
                return Err(spawn_failure(error));
            }
        };
        let stdin = child.stdin.take();
        let mut worker = Self {
            child,
            program: command.program.clone(),
            program_name,
            lines,
            stderr,
            stdin,
            timeout: command.timeout,
            greeted: false,
        };
        // A worker that died at start-up closes its stdin; what it said on stderr explains why.
        worker.send(request);
        Ok(worker)
    }

    /// One JSON line to the worker's stdin; a worker that has gone says why at its next event.
    pub fn send(&mut self, message: &impl Serialize) {
        if let Some(pipe) = &mut self.stdin {
            let mut line = serde_json::to_string(message).unwrap_or_default();
            line.push('\n');
            let _ = pipe.write_all(line.as_bytes()).and_then(|()| pipe.flush());
        }
    }

    /// The worker's next event of its job, waiting as long as it keeps its heartbeat (`tick` is
    /// called while waiting): an error when it exits, says `error`, breaks the protocol, stays
    /// silent past its timeout, or a stop signal arrives.
    pub fn event<E: DeserializeOwned>(&mut self, tick: &dyn Fn()) -> Result<E, WorkerFailure> {
        let last_heard = Instant::now();
        loop {
            if let Some(signal) = process::stop_signal() {
                return Err(WorkerFailure::Stopped(signal));
            }
            let line = match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tick();
                    // A worker that exited while something it started still holds its stdout
                    // has said all it will: that is an exit, not a hang.
                    if matches!(self.child.try_wait(), Ok(Some(_))) {
                        return Err(self.exited());
                    }
                    if last_heard.elapsed() > self.timeout {
                        return Err(WorkerFailure::Hung(self.timeout.as_secs()));
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.exited()),
            };
            let message: Message<E> = serde_json::from_str(&line).map_err(|e| {
                WorkerFailure::Protocol(format!(
                    "the worker said something hwbench does not understand ({e}): {}",
                    outside_line(&line, 80)
                ))
            })?;
            match message {
                Message::Hello { protocol, .. } if protocol != PROTOCOL => {
                    return Err(WorkerFailure::Protocol(format!(
                        "the worker speaks protocol {protocol}, hwbench speaks {PROTOCOL}: install matching versions"
                    )));
                }
                Message::Hello { .. } => self.greeted = true,
                _ if !self.greeted => {
                    return Err(WorkerFailure::Protocol(
                        "the worker did not introduce itself (no hello message)".to_string(),
                    ));
                }
                Message::Error { message } => {
                    return Err(WorkerFailure::Reported(outside_line(
                        &message,
                        REASON_CHARS,
                    )));
                }
                Message::Event(event) => return Ok(event),
            }
        }
    }

    /// Sends `step` (if any; `checks` is told), then reads events — each checked by `checks`,
    /// whose `Err` is an impossible event — until `pick` takes one: what the parent waits for
    /// after each step of a job.
    pub fn step<S: Serialize + Copy, E: DeserializeOwned, T>(
        &mut self,
        step: Option<S>,
        checks: &mut impl Checks<S, E>,
        tick: &dyn Fn(),
        mut pick: impl FnMut(E) -> Option<T>,
    ) -> Result<T, WorkerFailure> {
        if let Some(step) = step {
            checks.asked(step);
            self.send(&step);
        }
        loop {
            let event = self.event(tick)?;
            checks.check(&event).map_err(WorkerFailure::Invalid)?;
            if let Some(picked) = pick(event) {
                return Ok(picked);
            }
        }
    }

    /// Why the worker's output ended: how it exited and the last thing it said on stderr.
    fn exited(&mut self) -> WorkerFailure {
        self.stdin = None;
        process::kill_group(&self.child);
        let status = self.child.wait();
        // A process the worker left behind may hold stderr open: wait for it only briefly.
        let said = self
            .stderr
            .recv_timeout(Duration::from_secs(2))
            .ok()
            .and_then(|bytes| last_line(&String::from_utf8_lossy(&bytes)))
            .map(|line| without_path(&line, &self.program));
        let how = match status {
            Ok(status) => describe_exit(status),
            Err(e) => e.to_string(),
        };
        // A library the loader cannot find is named with what to do about it.
        if let Some(advice) = said.as_deref().and_then(crate::companion::missing_library) {
            return WorkerFailure::Exited(format!("{} cannot start: {advice}", self.program_name));
        }
        WorkerFailure::Exited(match said {
            Some(line) => format!("{how}: {line}"),
            None => how,
        })
    }
}

impl Drop for Worker {
    /// Whatever happened, nothing the worker started outlives it.
    fn drop(&mut self) {
        self.stdin = None;
        process::kill_group(&self.child);
        let _ = self.child.wait();
    }
}

/// The worker's stdout, line by line, from a thread of its own. A line is cut at 16 MiB: no
/// message of the protocol comes near that.
fn read_lines(child: &mut Child) -> std::io::Result<mpsc::Receiver<String>> {
    const LONGEST_LINE: u64 = 16 << 20;
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take();
    process::spawn_thread("worker output", move || {
        let Some(stdout) = stdout else { return };
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match (&mut reader)
                .take(LONGEST_LINE)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    if sender.send(text).is_err() {
                        break;
                    }
                }
            }
        }
    })?;
    Ok(receiver)
}
