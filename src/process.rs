//! Other programs hwbench starts briefly (the companion's `describe`, the torch probe) and what
//! their output and exit status say, in one line fit for a report.

use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Why a short helper command gave no output.
#[derive(Debug)]
pub enum QuickRunError {
    Spawn(std::io::Error),
    TimedOut,
}

/// Runs a short command (stdin closed) to the end, killing it after `timeout`. Its outputs are read
/// while it runs, so a chatty command cannot block on a full pipe.
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Output, QuickRunError> {
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

/// The loader names a program by its full path; the file name says as much without revealing
/// where it is installed (a path can carry a user name into a public report).
pub fn without_path(line: &str, program: &Path) -> String {
    match program.file_name() {
        Some(name) => line.replace(&program.display().to_string(), &name.to_string_lossy()),
        None => line.to_string(),
    }
}

/// How a process ended, in words: "exit code 3", "crashed (signal 11)".
pub fn describe_exit(status: ExitStatus) -> String {
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

/// At most `max` characters, with "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}
