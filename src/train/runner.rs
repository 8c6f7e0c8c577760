//! The parent side of a run: one worker process per planned column, one after another (never in
//! parallel, so that they do not disturb each other's timings), and what they say gathered into a
//! [`TrainCompareReport`].

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::plan::{Column, Plan, WorkerCommand};
use super::protocol::{Event, Message, PROTOCOL, SessionRequest, WorkerRequest};
use super::results::{
    DeviceResult, DeviceStatus, PolicyResult, RunConfig, RunResult, SCHEMA_VERSION,
    TrainCompareReport,
};
use super::{SyncPolicy, analysis, verdict};
use crate::process::{describe_exit, last_line, truncate, without_path};

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
    #[error("interrupted")]
    Interrupted,
}

/// Runs every column in turn. Stops early, keeping what finished, when `interrupted` is set.
pub fn run_plan(plan: &Plan, interrupted: &AtomicBool) -> TrainCompareReport {
    let total_runs =
        plan.columns.len() as u64 * plan.policies.len() as u64 * u64::from(plan.repeats);
    let progress = ProgressBar::new(total_runs).with_style(
        ProgressStyle::with_template("{spinner} {msg:28} [{bar:30}] {pos}/{len} runs, {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(200));

    let mut devices = Vec::new();
    for column in &plan.columns {
        let result = if interrupted.load(Ordering::SeqCst) {
            DeviceResult::stopped(
                column.device,
                column.framework,
                DeviceStatus::Interrupted,
                "interrupted before it started".to_string(),
            )
        } else {
            match &column.worker {
                Ok(command) => run_column(plan, column, command, interrupted, &progress),
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
    progress.finish_and_clear();

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

/// One column: its worker's whole session, or as much of it as finished.
fn run_column(
    plan: &Plan,
    column: &Column,
    command: &WorkerCommand,
    interrupted: &AtomicBool,
    progress: &ProgressBar,
) -> DeviceResult {
    let request = WorkerRequest {
        protocol: PROTOCOL,
        session: SessionRequest {
            device: column.device,
            config: plan.config.clone(),
            policies: plan.policies.clone(),
            repeats: plan.repeats,
            warmup_epochs: plan.warmup_epochs,
        },
        data: plan.data.clone(),
    };
    let mut result = DeviceResult::new(column.device, column.framework);
    let label = result.label.clone();
    let mut runs: Vec<(SyncPolicy, Vec<RunResult>)> =
        plan.policies.iter().map(|&p| (p, Vec::new())).collect();
    let mut reported = 0u64;
    progress.set_message(format!("{label}: warming up"));
    let outcome = talk_to_worker(command, &request, interrupted, |event| match event {
        Event::Ready(facts) => result.facts = Some(facts),
        Event::Run(run) => {
            reported += 1;
            progress.inc(1);
            progress.set_message(format!("{label}: {}", run.policy.label()));
            if let Some((_, list)) = runs.iter_mut().find(|(policy, _)| *policy == run.policy) {
                list.push(run);
            }
        }
        Event::Finished(outcome) => result.finish(outcome),
    });
    // After a failure or Ctrl-C, the policies keep the runs that finished (`runs` says how many).
    result.policies = runs
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(policy, list)| PolicyResult::from_runs(policy, list))
        .collect();
    let planned = plan.policies.len() as u64 * u64::from(plan.repeats);
    progress.inc(planned.saturating_sub(reported));
    match outcome {
        Ok(()) => {}
        // Ctrl-C in a terminal reaches the worker too, which may die before hwbench notices the
        // signal itself: any failure after it is the interruption.
        Err(_) if interrupted.load(Ordering::SeqCst) => {
            result.status = DeviceStatus::Interrupted;
            result.reason = Some("interrupted (Ctrl-C)".to_string());
        }
        Err(failure) => {
            result.status = if result.policies.is_empty() && result.facts.is_none() {
                DeviceStatus::NotRun
            } else {
                DeviceStatus::Failed
            };
            result.reason = Some(failure.to_string());
        }
    }
    result
}

/// Starts one worker, sends it `request`, and hands each event of its session to `on_event`
/// until it finishes, fails, hangs past its timeout, or `interrupted` is set.
pub fn talk_to_worker(
    command: &WorkerCommand,
    request: &WorkerRequest,
    interrupted: &AtomicBool,
    mut on_event: impl FnMut(Event),
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

    if let Some(mut stdin) = child.stdin.take() {
        // A worker that died at start-up closes its stdin; what it said on stderr explains why.
        let mut line = serde_json::to_string(request).expect("a request serialises");
        line.push('\n');
        let _ = stdin.write_all(line.as_bytes());
    }

    let outcome = converse(&lines, command.timeout, interrupted, &mut on_event);
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
    on_event: &mut impl FnMut(Event),
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
            Message::Event(event) => {
                let finished = matches!(event, Event::Finished(_));
                on_event(event);
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
