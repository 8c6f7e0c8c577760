//! What each subcommand does, from plain settings to an exit code. `cli` parses the command line
//! into these settings; the rooms below (`info`, `train`, `bug_report`, `diff`, `fleet`) do the
//! work; every command ends through [`emit`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::bug_report::BugReport;
use crate::error::Interrupted;
use crate::info::{self, GpuSource};
use crate::output::Destination;
use crate::render::{self, Format, Render, Style};
use crate::train::plan::{self, TrainSettings};
use crate::train::{TrainCompareReport, plot, runner};
use crate::{diff, fleet, redact, saved};

/// Where and how a command's report goes.
#[derive(Clone, Debug)]
pub struct OutputSettings {
    pub format: Format,
    /// `None`: stdout.
    pub path: Option<PathBuf>,
    /// Replace identifying values (hostname, GPU UUIDs and serials) with placeholders.
    pub redact: bool,
}

impl OutputSettings {
    /// Opens the destination now, so that a bad path fails before any work.
    fn open(&self) -> anyhow::Result<Destination> {
        Destination::open(self.path.as_deref(), "-o")
    }
}

/// How a command's result maps to its exit code.
enum Outcome {
    /// 0.
    Done,
    /// 1: `diff` found differences.
    Different,
    /// 130: Ctrl-C stopped the run after what finished was written.
    Incomplete,
}

/// Renders `report` in `format` to `destination`, then ends as `outcome` says.
fn emit<R: Render>(
    report: &R,
    destination: Destination,
    format: Format,
    outcome: Outcome,
) -> anyhow::Result<ExitCode> {
    let style = if destination.is_stdout() {
        Style::for_stdout(std::io::stdout().is_terminal())
    } else {
        Style::plain()
    };
    destination.write(&render::render(report, format, style)?)?;
    match outcome {
        Outcome::Done => Ok(ExitCode::SUCCESS),
        Outcome::Different => Ok(ExitCode::from(1)),
        Outcome::Incomplete => Err(Interrupted.into()),
    }
}

fn finished(complete: bool) -> Outcome {
    if complete {
        Outcome::Done
    } else {
        Outcome::Incomplete
    }
}

/// `hwbench info`.
pub fn info(output: &OutputSettings) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    emit(
        &collect_info(output.redact),
        destination,
        output.format,
        Outcome::Done,
    )
}

fn collect_info(redact: bool) -> info::InfoReport {
    let mut report = info::collect(&GpuSource::from_env());
    if redact {
        redact::info(&mut report);
    }
    report
}

/// `hwbench train-compare`.
pub fn train_compare(
    settings: &TrainSettings,
    plot_path: Option<&Path>,
    output: &OutputSettings,
) -> anyhow::Result<ExitCode> {
    let plan = plan::plan(settings)?;
    // Fail on a bad path now, not after the run.
    let destination = output.open()?;
    let plot_destination = plot_path
        .map(|path| Destination::open(Some(path), "--plot"))
        .transpose()?;
    let report = train(&plan, output.redact)?;
    if let Some(plot_destination) = plot_destination {
        plot_destination.write(&plot::svg(&report)?)?;
    }
    emit(
        &report,
        destination,
        output.format,
        finished(report.complete),
    )
}

/// Trains, stopping early on Ctrl-C (the report then says it is incomplete).
fn train(plan: &plan::Plan, redact: bool) -> anyhow::Result<TrainCompareReport> {
    static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    let mut report = runner::run_plan(plan, &INTERRUPTED);
    report.redacted = redact;
    Ok(report)
}

/// `hwbench report`: `info`, a quick `train-compare` and the versions, in one document.
pub fn report(settings: &TrainSettings, output: &OutputSettings) -> anyhow::Result<ExitCode> {
    let plan = plan::plan(settings)?;
    let destination = output.open()?;
    let machine = collect_info(output.redact);
    let training = train(&plan, output.redact)?;
    let complete = training.complete;
    let report = BugReport::new(machine, training);
    emit(&report, destination, output.format, finished(complete))
}

/// `hwbench diff`: exit 0 when the reports agree, 1 when they differ, 2 on bad input.
pub fn diff(a: &Path, b: &Path, output: &OutputSettings) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    let report = diff::diff_reports(&saved::read(a)?, &saved::read(b)?)?;
    let outcome = if report.same {
        Outcome::Done
    } else {
        Outcome::Different
    };
    emit(&report, destination, output.format, outcome)
}

/// `hwbench fleet`.
pub fn fleet(inputs: &[PathBuf], output: &OutputSettings) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    let nodes = fleet::read_nodes(&fleet::report_files(inputs)?)?;
    emit(
        &fleet::analyse(&nodes)?,
        destination,
        output.format,
        Outcome::Done,
    )
}
