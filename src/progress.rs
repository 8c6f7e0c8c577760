//! The progress every long command shows on stderr while it measures: on a terminal, a bar
//! redrawn in place that fits 60 columns; elsewhere (a Slurm job's log, CI), plain lines — one
//! when the phase changes, and at most one every [`LOG_INTERVAL`] in between, each saying what
//! runs and how far along it is. `HWBENCH_PROGRESS` chooses: `bar`, `lines` or `none` (default:
//! `bar` on a terminal, `none` on a dumb one, `lines` anywhere else).

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// The variable that chooses how progress is shown.
pub const ENV: &str = "HWBENCH_PROGRESS";

/// The longest a log goes without a progress line while the phase stays the same.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Between a progress line's phase and the rest.
const SEPARATOR: &str = " · ";

/// A job's progress: a bar whose prefix is the job and its phase ("train-compare: warm-up"). It
/// derefs to the bar for messages, positions and ticks.
pub struct Progress {
    bar: ProgressBar,
    style: Style,
    job: String,
}

impl Progress {
    /// Progress of `job` (e.g. "scale", or "report 2/2, scale") on stderr.
    pub fn new(job: &str) -> Self {
        let style = Style::chosen();
        let bar = match style {
            Style::Bar => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            Style::Lines => ProgressBar::with_draw_target(
                None,
                ProgressDrawTarget::term_like(Box::new(LogLines::default())),
            ),
            Style::None => ProgressBar::hidden(),
        };
        bar.set_style(template(style, false));
        Self {
            bar,
            style,
            job: job.to_string(),
        }
    }

    /// A new phase of the job ("timed runs") and what it starts with: logs get a line for it at
    /// once. Its time left is foretold from the rate so far.
    pub fn phase(&self, phase: &str, message: impl Into<String>) {
        self.enter(phase, message.into(), true);
    }

    /// A phase whose length nothing foretells (workers starting: importing torch or loading
    /// CUDA takes what it takes): no time left is shown until the next phase.
    pub fn preparing(&self, phase: &str, message: impl Into<String>) {
        self.enter(phase, message.into(), false);
    }

    fn enter(&self, phase: &str, message: String, eta: bool) {
        // No draw shows the new phase with the old message, or the reverse: logs skip lines
        // without a phase.
        self.bar.set_prefix("");
        self.bar.set_style(template(self.style, eta));
        self.bar.set_message(message);
        self.bar.set_prefix(format!("{}: {phase}", self.job));
    }
}

/// The bar's look: on a terminal a 12-column bar (the message takes what is left of the width);
/// in logs a plain line. `eta`: with the time left.
fn template(style: Style, eta: bool) -> ProgressStyle {
    let text = match (style, eta) {
        (Style::Bar, true) => "{prefix} {wide_msg} {bar:12} {percent:>3}% ~{eta} left".to_string(),
        (Style::Bar, false) => "{prefix} {wide_msg} {bar:12} {percent:>3}% {elapsed}".to_string(),
        (_, true) => format!(
            "{{prefix}}{SEPARATOR}{{msg}}{SEPARATOR}{{percent}}% after {{elapsed}}, about {{eta}} left"
        ),
        (_, false) => {
            format!("{{prefix}}{SEPARATOR}{{msg}}{SEPARATOR}{{percent}}% after {{elapsed}}")
        }
    };
    ProgressStyle::with_template(&text)
        .expect("valid template")
        .progress_chars("=> ")
}

impl std::ops::Deref for Progress {
    type Target = ProgressBar;

    fn deref(&self) -> &ProgressBar {
        &self.bar
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Bar,
    Lines,
    None,
}

impl Style {
    /// `HWBENCH_PROGRESS` if set to a known style, else what stderr is.
    fn chosen() -> Self {
        match std::env::var(ENV).as_deref() {
            Ok("bar") => return Self::Bar,
            Ok("lines") => return Self::Lines,
            Ok("none") => return Self::None,
            _ => {}
        }
        if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
            Self::None
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Self::Bar
        } else {
            Self::Lines
        }
    }
}

/// A "terminal" that turns the bar's redraws into log lines: a line when the phase (the text
/// before the first separator) changes, else at most one per [`LOG_INTERVAL`].
#[derive(Debug, Default)]
struct LogLines {
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    /// The text drawn since the last flush.
    pending: String,
    phase: String,
    last: Option<Instant>,
}

impl LogState {
    /// The line to write for what was drawn, if one is due at `now`.
    fn due(&mut self, now: Instant) -> Option<String> {
        let pending = std::mem::take(&mut self.pending);
        let line = pending.trim_end();
        let mut parts = line.split(SEPARATOR);
        let (phase, message) = (parts.next().unwrap_or_default().trim(), parts.next());
        // A draw between phases, or before a phase says what runs, waits for the next.
        if phase.is_empty() || message.is_none_or(|m| m.trim().is_empty()) {
            return None;
        }
        let quiet_long_enough = self
            .last
            .is_none_or(|last| now.duration_since(last) >= LOG_INTERVAL);
        if phase != self.phase || quiet_long_enough {
            self.phase = phase.to_string();
            self.last = Some(now);
            // Nothing done yet: no time left to foretell.
            let line = match line.split_once(&format!("{SEPARATOR}0% after ")) {
                Some((head, tail)) => {
                    let elapsed = tail.split(',').next().unwrap_or_default();
                    format!("{head}{SEPARATOR}starting after {elapsed}")
                }
                None => line.to_string(),
            };
            Some(line)
        } else {
            None
        }
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        u16::MAX
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pending.push_str(s);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let line = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.due(Instant::now())
        };
        match line {
            Some(line) => writeln!(std::io::stderr().lock(), "{line}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_gets_a_line_per_phase_and_one_per_interval_between() {
        let mut state = LogState::default();
        let start = Instant::now();
        let mut draw = |text: &str, after_s: u64| {
            state.pending = text.to_string();
            state.due(start + Duration::from_secs(after_s))
        };
        let line = |phase: &str, msg: &str| format!("{phase}{SEPARATOR}{msg}{SEPARATOR}10%");
        assert!(draw(&line("scale: climbing", "cpu×1: 4:10:3:120"), 0).is_some());
        assert_eq!(draw(&line("scale: climbing", "cpu×2: 4:10:3:120"), 1), None);
        assert!(draw(&line("scale: timed runs", "round 1"), 2).is_some());
        assert_eq!(draw(&line("scale: timed runs", "round 2"), 11), None);
        assert!(draw(&line("scale: timed runs", "round 3"), 12).is_some());
        assert_eq!(draw("   ", 30), None);
        assert_eq!(
            draw(&line("scale: deciding", ""), 31),
            None,
            "no message yet"
        );
        assert!(draw(&line("scale: deciding", "round 9"), 31).is_some());
        let first = format!("scale: warm-up{SEPARATOR}cpu×1{SEPARATOR}0% after 0s, about 0s left");
        assert_eq!(
            draw(&first, 40).as_deref(),
            Some("scale: warm-up · cpu×1 · starting after 0s")
        );
    }
}
