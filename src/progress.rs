//! The progress bar every long command shows on stderr while it measures.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr (none on a dumb terminal, which cannot move its cursor back).
pub fn progress_bar() -> ProgressBar {
    let target = if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    ProgressBar::with_draw_target(None, target).with_style(
        ProgressStyle::with_template(
            "{msg:28} [{bar:30}] {percent:>3}%, {elapsed}, about {eta} left",
        )
        .expect("valid template")
        .progress_chars("=> "),
    )
}
