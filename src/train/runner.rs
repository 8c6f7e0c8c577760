//! The parent side of a run: one worker process per planned column, one after another (never in
//! parallel, so that they do not disturb each other's timings), and what they say gathered into a
//! [`TrainCompareReport`].

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plan::{Column, Plan, WorkerCommand, timed_epochs};
use super::protocol::{
    Event, EventCheck, Message, PROTOCOL, Progress, SessionRequest, TimedRuns, WorkerRequest,
};
use super::results::{
    DeviceResult, DeviceStatus, PolicyResult, RunConfig, RunResult, SCHEMA_VERSION,
    TrainCompareReport,
};
use super::{SyncPolicy, analysis, verdict};
use crate::process::{self, describe_exit, last_line, without_path};
use crate::redact::outside_line;

/// Reasons and worker messages are cut to this many characters.
const REASON_CHARS: usize = 300;

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

/// How people know a stop signal.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "Ctrl-C".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        other => format!("signal {other}"),
    }
}

/// Runs every column in turn. Stops early, keeping what finished, when a stop signal arrives
/// (see `process::catch_stop_signals`).
pub fn run_plan(plan: &Plan) -> TrainCompareReport {
    let progress = RunProgress::new(plan);
    let started = Instant::now();
    let deadline = plan.time_budget.map(|budget| started + budget);
    let mut devices = Vec::new();
    for (index, column) in plan.columns.iter().enumerate() {
        progress.start_column(index);
        let share = Share {
            started,
            deadline,
            columns_left: plan.columns[index..]
                .iter()
                .filter(|c| c.worker.is_ok())
                .count()
                .max(1),
        };
        let result = if let Some(signal) = process::stop_signal() {
            DeviceResult::stopped(
                column.device,
                column.framework,
                DeviceStatus::Interrupted,
                format!("interrupted ({}) before it started", signal_name(signal)),
            )
        } else {
            match &column.worker {
                Ok(command) => run_column(plan, column, command, &progress, share),
                Err(reason) => DeviceResult::stopped(
                    column.device,
                    column.framework,
                    DeviceStatus::NotRun,
                    reason.clone(),
                ),
            }
        };
        devices.push(result);
    }
    progress.bar.finish_and_clear();

    let complete = devices
        .iter()
        .all(|d| d.status != DeviceStatus::Interrupted);
    let mut report = TrainCompareReport {
        schema_version: SCHEMA_VERSION,
        kind: "train-compare".to_string(),
        redacted: false,
        hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
        config: RunConfig {
            hidden: plan.config.hidden,
            lr: plan.config.lr,
            epochs: plan.config.epochs,
            repeats: plan.repeats,
            warmup_epochs: plan.warmup_epochs.min(plan.config.epochs),
            split_seed: plan.config.split_seed,
            train_rows: plan.data.train_rows(),
            test_rows: plan.data.test_rows(),
            init: plan.config.init.source.clone(),
            policies: plan.policies.clone(),
        },
        complete,
        devices,
        verdict: Vec::new(),
        notes: plan.notes.clone(),
    };
    analysis::add_derived_figures(&mut report);
    report.verdict = verdict::conclusions(&report);
    report
}

/// The progress bar, counted in epochs (warm-ups included), moved by each worker's heartbeats;
/// a column's length is known for sure once its timed epochs are decided.
struct RunProgress {
    bar: ProgressBar,
    policies: Vec<SyncPolicy>,
    warmup_epochs: u64,
    repeats: u64,
    /// Epochs of each column's timed runs (the course's until the column calibrates).
    timed: RefCell<Vec<u64>>,
    current: Cell<usize>,
}

impl RunProgress {
    fn new(plan: &Plan) -> Self {
        // A dumb terminal cannot move its cursor back: no bar there.
        let target = if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(None, target).with_style(
            ProgressStyle::with_template(
                "{msg:28} [{bar:30}] {percent:>3}%, {elapsed}, about {eta} left",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let progress = Self {
            bar,
            policies: plan.policies.clone(),
            warmup_epochs: plan.warmup_epochs.clamp(1, plan.config.epochs),
            repeats: u64::from(plan.repeats),
            timed: RefCell::new(vec![plan.config.epochs; plan.columns.len()]),
            current: Cell::new(0),
        };
        progress.bar.set_length(progress.offset(plan.columns.len()));
        progress
    }

    fn length(&self, timed: u64) -> u64 {
        self.policies.len() as u64 * (self.warmup_epochs + self.repeats * timed)
    }

    /// Where column `index` starts.
    fn offset(&self, index: usize) -> u64 {
        self.timed.borrow()[..index]
            .iter()
            .map(|&t| self.length(t))
            .sum()
    }

    fn start_column(&self, index: usize) {
        self.current.set(index);
        self.bar.set_position(self.offset(index));
    }

    fn set_timed_epochs(&self, epochs: u64) {
        self.timed.borrow_mut()[self.current.get()] = epochs;
        let columns = self.timed.borrow().len();
        self.bar.set_length(self.offset(columns));
    }

    /// Where `progress` is in this column's sequence: every warm-up, then the timed runs round by
    /// round, one of each policy per round.
    fn at(&self, progress: Progress) {
        let count = self.policies.len() as u64;
        let index = self
            .policies
            .iter()
            .position(|p| *p == progress.policy)
            .unwrap_or_default() as u64;
        let timed = self.timed.borrow()[self.current.get()];
        let done = if progress.repeat == 0 {
            index * self.warmup_epochs + progress.epoch.min(self.warmup_epochs)
        } else {
            count * self.warmup_epochs
                + ((u64::from(progress.repeat) - 1) * count + index) * timed
                + progress.epoch
        };
        let column = self.current.get();
        self.bar
            .set_position(self.offset(column) + done.min(self.length(timed)));
    }

    fn tick(&self) {
        self.bar.tick();
    }
}

/// What a column may spend: the run's deadline, shared by the columns still to run.
#[derive(Clone, Copy)]
struct Share {
    started: Instant,
    deadline: Option<Instant>,
    /// Columns still to run, this one included.
    columns_left: usize,
}

/// One column: its worker's whole session, or as much of it as finished.
fn run_column(
    plan: &Plan,
    column: &Column,
    command: &WorkerCommand,
    progress: &RunProgress,
    share: Share,
) -> DeviceResult {
    let request = WorkerRequest {
        protocol: PROTOCOL,
        session: SessionRequest {
            device: column.device,
            config: plan.config.clone(),
            policies: plan.policies.clone(),
            repeats: plan.repeats,
            warmup_epochs: plan.warmup_epochs,
            calibrate: true,
        },
        data: plan.data.clone(),
    };
    let mut result = DeviceResult::new(column.device, column.framework);
    let label = result.label.clone();
    let mut runs: Vec<(SyncPolicy, Vec<RunResult>)> =
        plan.policies.iter().map(|&p| (p, Vec::new())).collect();
    progress.bar.set_message(format!("{label}: warming up"));
    let mut check = EventCheck::new(&request.session);
    let outcome = talk_to_worker(
        command,
        &request,
        &mut check,
        progress,
        |event| match event {
            Event::Ready(facts) => {
                result.facts = Some(facts);
                None
            }
            Event::Progress(at) => {
                progress.at(at);
                if at.repeat > 0 {
                    progress
                        .bar
                        .set_message(format!("{label}: {}", at.policy.label()));
                }
                None
            }
            Event::Calibrated { per_epoch_us } => {
                let now = Instant::now();
                let budget = share.deadline.map(|deadline| {
                    deadline.saturating_duration_since(now) / share.columns_left as u32
                });
                let epochs = timed_epochs(budget, &per_epoch_us, plan.repeats, plan.config.epochs);
                if epochs < plan.config.epochs {
                    result.timed_epochs = Some(epochs);
                }
                progress.set_timed_epochs(epochs);
                foretell(share, now, &per_epoch_us, plan.repeats, epochs);
                Some(TimedRuns { epochs })
            }
            Event::Run(run) => {
                progress.at(Progress {
                    policy: run.policy,
                    repeat: run.repeat,
                    epoch: run.epochs,
                });
                progress
                    .bar
                    .set_message(format!("{label}: {}", run.policy.label()));
                if let Some((_, list)) = runs.iter_mut().find(|(policy, _)| *policy == run.policy) {
                    list.push(run);
                }
                None
            }
            Event::Finished(outcome) => {
                result.finish(outcome);
                None
            }
        },
    );
    // After a failure or a stop, the policies keep the runs that finished (`runs` says how many).
    result.policies = runs
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(policy, list)| PolicyResult::from_runs(policy, list))
        .collect();
    match outcome {
        Ok(()) => {}
        Err(WorkerFailure::Stopped(signal)) => {
            result.status = DeviceStatus::Interrupted;
            result.reason = Some(format!("interrupted ({})", signal_name(signal)));
        }
        Err(failure) => {
            result.status = if result.policies.is_empty() && result.facts.is_none() {
                DeviceStatus::NotRun
            } else {
                DeviceStatus::Failed
            };
            result.reason = Some(outside_line(&failure.to_string(), REASON_CHARS));
        }
    }
    result
}

/// Says once, on stderr, when the run will take over ten minutes (the columns still to run
/// guessed to cost as much as this one).
fn foretell(share: Share, now: Instant, per_epoch_us: &[f64], repeats: u32, epochs: u64) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let column = per_epoch_us.iter().sum::<f64>() * f64::from(repeats) * epochs as f64 / 1e6;
    let spent = now.duration_since(share.started).as_secs_f64();
    let whole = spent + column * share.columns_left as f64;
    if whole > 600.0 && !SAID.swap(true, std::sync::atomic::Ordering::SeqCst) {
        eprintln!(
            "hwbench: this run will take about {} (without --time-budget, every timed run trains all {epochs} epochs)",
            crate::units::seconds(whole)
        );
    }
}

/// Starts one worker, sends it `request`, and hands each event of its session that passes
/// `check` to `on_event`, until it finishes, fails, sends something impossible, stays silent past
/// its timeout, or a stop signal arrives. The worker and every process it started are gone when
/// this returns.
fn talk_to_worker(
    command: &WorkerCommand,
    request: &WorkerRequest,
    check: &mut EventCheck,
    progress: &RunProgress,
    mut on_event: impl FnMut(Event) -> Option<TimedRuns>,
) -> Result<(), WorkerFailure> {
    let program_name = command.program.file_name().map_or_else(
        || command.program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let spawn_failure = |error| WorkerFailure::Spawn {
        program: program_name.clone(),
        error,
    };
    // Owned for the whole run: dropping it removes the script.
    let script = command
        .script
        .map(write_script)
        .transpose()
        .map_err(spawn_failure)?;
    let mut child = process::spawn_in_own_group(
        Command::new(&command.program)
            .args(&command.args)
            .args(script.iter().map(|(_, path)| path))
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

    let mut stdin = child.stdin.take();
    // A worker that died at start-up closes its stdin; what it said on stderr explains why.
    send_line(&mut stdin, request);

    let outcome = converse(&lines, command.timeout, check, progress, &mut |event| {
        let reply = on_event(event);
        if let Some(reply) = reply {
            send_line(&mut stdin, &reply);
        }
        reply
    });
    drop(stdin);
    // Whatever happened, nothing the worker started outlives its column.
    process::kill_group(&child);
    let status = child.wait();
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => {
            // A process the worker left behind may hold stderr open: wait for it only briefly.
            let said = stderr
                .recv_timeout(Duration::from_secs(2))
                .ok()
                .and_then(|bytes| last_line(&String::from_utf8_lossy(&bytes)))
                .map(|line| without_path(&line, &command.program));
            let how = match status {
                Ok(status) => describe_exit(status),
                Err(e) => e.to_string(),
            };
            // A library the loader cannot find is named with what to do about it.
            if let Some(advice) = said.as_deref().and_then(crate::companion::missing_library) {
                return Err(WorkerFailure::Exited(format!(
                    "{program_name} cannot start: {advice}"
                )));
            }
            Err(WorkerFailure::Exited(match said {
                Some(line) => format!("{how}: {line}"),
                None => how,
            }))
        }
        Err(failure) => Err(failure),
    }
}

/// One JSON line to the worker's stdin; a worker that has gone says why elsewhere.
fn send_line(stdin: &mut Option<std::process::ChildStdin>, message: &impl serde::Serialize) {
    if let Some(pipe) = stdin {
        let mut line = serde_json::to_string(message).unwrap_or_default();
        line.push('\n');
        let _ = pipe.write_all(line.as_bytes()).and_then(|()| pipe.flush());
    }
}

/// Reads messages until `finished` (Ok(true)) or the worker's stdout closes (Ok(false)).
fn converse(
    lines: &mpsc::Receiver<String>,
    timeout: Duration,
    check: &mut EventCheck,
    progress: &RunProgress,
    on_event: &mut impl FnMut(Event) -> Option<TimedRuns>,
) -> Result<bool, WorkerFailure> {
    let mut greeted = false;
    let mut last_heard = Instant::now();
    loop {
        if let Some(signal) = process::stop_signal() {
            return Err(WorkerFailure::Stopped(signal));
        }
        let line = match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                progress.tick();
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
                outside_line(&line, 80)
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
            Message::Error { message } => {
                return Err(WorkerFailure::Reported(outside_line(
                    &message,
                    REASON_CHARS,
                )));
            }
            Message::Event(event) => {
                check.check(&event).map_err(WorkerFailure::Invalid)?;
                let finished = matches!(event, Event::Finished(_));
                if let Some(reply) = on_event(event) {
                    check.expect_epochs(reply.epochs);
                }
                if finished {
                    return Ok(true);
                }
            }
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
