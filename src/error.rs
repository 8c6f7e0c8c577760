//! Errors a user can cause, and how each kind of failure maps to an exit code.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage error (bad flag, bad file), 128 + the
//! signal when a signal stopped the run (130 for Ctrl-C, 143 for SIGTERM) after the finished work
//! was written.

use std::process::ExitCode;

/// A problem with what the user asked for: reported in one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A signal stopped the run after the finished work was written.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by signal {signal}")]
pub struct Interrupted {
    pub signal: i32,
}

/// Columns that failed, could not run, or computed wrong results: one line each.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct ColumnErrors(pub Vec<String>);

/// 0 success, 1 runtime failure, 2 usage error, 128 + signal when interrupted.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    if let Some(interrupted) = error.downcast_ref::<Interrupted>() {
        ExitCode::from((128 + interrupted.signal).clamp(0, 255) as u8)
    } else if error.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// True when the error is a closed pipe on stdout (`hwbench info | head -1`), which is not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `line` to stderr; a stderr nobody reads any more (a closed pipe) is not worth a panic,
/// which is what `eprintln!` does then.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The lines to print for `error` on stderr: one, or one per column for [`ColumnErrors`].
pub fn lines(error: &anyhow::Error) -> Vec<String> {
    match error.downcast_ref::<ColumnErrors>() {
        Some(ColumnErrors(lines)) => lines.iter().map(|l| format!("Error: {l}")).collect(),
        None => vec![format!("Error: {}", one_line(&format!("{error:#}")))],
    }
}

/// Messages from libraries can hold line breaks; a user gets one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
