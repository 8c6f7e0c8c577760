//! What each subcommand does, from plain settings to an exit code. `cli` parses the command line
//! into these settings; the rooms below (`info`, `train`, `scale`, `bug_report`, `diff`, `fleet`)
//! do the work; every command ends through [`emit`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::bug_report::BugReport;
use crate::error::{ColumnErrors, Interrupted};
use crate::info::findings::{self, Severity};
use crate::info::{self, GpuSource, Root};
use crate::output::Destination;
use crate::redact::Redactor;
use crate::render::{self, Format, Render, Style};
use crate::scale::{self, ScaleReport, ScaleSettings};
use crate::train::conversation::signal_name;
use crate::train::plan::{self, Plan, TrainSettings};
use crate::train::results::DeviceStatus;
use crate::train::{TrainCompareReport, plot, runner};
use crate::{diff, fleet, process, saved};

/// Where and how a command's report goes.
#[derive(Clone, Debug)]
pub struct OutputSettings {
    pub format: Format,
    /// `None` (or `-`): stdout.
    pub path: Option<PathBuf>,
    /// Replace identifying values (hostname, GPU UUIDs and serials) with placeholders.
    pub redact: bool,
}

impl OutputSettings {
    /// Opens the destination now, so that a bad path fails before any work.
    fn open(&self) -> anyhow::Result<Destination> {
        Destination::open(self.path.as_deref(), "-o")
    }

    /// The redactor when redacting, for commands that read reports from elsewhere.
    fn redactor(&self) -> Option<Redactor> {
        self.redact.then(Redactor::for_this_machine)
    }
}

/// How a command's result maps to its exit code.
enum Outcome {
    /// 0.
    Done,
    /// 1: `diff` found differences.
    Different,
    /// 1, with this line on stderr: the work was done, but something must fail the command
    /// (`fleet`'s unreadable files, `info --fail-on`).
    Partly(String),
    /// 128 + signal: a signal stopped the run after what finished was written (to `PATH.partial`
    /// when the destination is a file).
    Stopped(i32),
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
    let destination = match outcome {
        Outcome::Stopped(_) => destination.for_partial_report(),
        _ => destination,
    };
    let partial = destination.path().map(Path::to_path_buf);
    destination.write(&render::render(report, format, style)?)?;
    match outcome {
        Outcome::Done => Ok(ExitCode::SUCCESS),
        Outcome::Different => Ok(ExitCode::from(1)),
        Outcome::Partly(why) => {
            eprintln!("Error: {why}");
            Ok(ExitCode::from(1))
        }
        Outcome::Stopped(signal) => {
            if let Some(path) = partial {
                eprintln!(
                    "hwbench: interrupted ({}); the finished rows are in {}",
                    signal_name(signal),
                    path.display()
                );
            }
            Err(Interrupted { signal }.into())
        }
    }
}

/// Done, or stopped by the signal that arrived.
fn finished(complete: bool) -> Outcome {
    match process::stop_signal() {
        Some(signal) if !complete => Outcome::Stopped(signal),
        _ => Outcome::Done,
    }
}

/// `hwbench info`: exit 1 when `fail_on` is given and a finding of at least that severity exists.
pub fn info(output: &OutputSettings, fail_on: Option<Severity>) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    let report = collect_info(output.redact);
    let failing: Vec<String> = report
        .findings
        .iter()
        .filter(|f| fail_on.is_some_and(|least| f.severity >= least))
        .map(|f| format!("{} ({})", f.id, f.subject))
        .collect();
    let outcome = match (fail_on, failing.len()) {
        (Some(least), n) if n > 0 => Outcome::Partly(format!(
            "{n} finding{} at {} or above: {}",
            if n == 1 { "" } else { "s" },
            least.name(),
            failing.join(", ")
        )),
        _ => Outcome::Done,
    };
    emit(&report, destination, output.format, outcome)
}

/// The machine with its findings, redacted when asked (redaction works the findings out again
/// from what the report may show, so that they name no process).
fn collect_info(redact: bool) -> info::InfoReport {
    let mut report = info::collect(&GpuSource::from_env(), &Root::from_env());
    report.findings = findings::assess(&report);
    if redact {
        report.redact(&Redactor::for_this_machine());
    }
    report
}

/// `hwbench train-compare`.
pub fn train_compare(
    settings: &TrainSettings,
    plot_path: Option<&Path>,
    output: &OutputSettings,
) -> anyhow::Result<ExitCode> {
    let plan = planned(|| plan::plan(settings))?;
    let (destination, plot_destination) = open_destinations(output, plot_path)?;
    let report = train(&plan, output.redact);
    let labels: Vec<(String, &str, Option<String>)> = report
        .devices
        .iter()
        .map(|d| (d.label.clone(), d.status.words(), d.reason.clone()))
        .collect();
    let nothing_trained = report
        .devices
        .iter()
        .all(|d| matches!(d.status, DeviceStatus::NotRun | DeviceStatus::Failed));
    let wrong: Vec<String> = report
        .devices
        .iter()
        .filter(|d| d.status == DeviceStatus::WrongResults)
        .map(|d| {
            format!(
                "{} computed wrong results: {}",
                d.label,
                d.reason.as_deref().unwrap_or("its losses are not cpu×1's")
            )
        })
        .collect();
    let run = Run {
        complete: report.complete,
        nothing_trained,
        columns: labels,
        wrong,
    };
    finish_run(
        &report,
        &run,
        destination,
        plot_destination,
        plot_path,
        output.format,
        plot::svg,
    )
}

/// The report's and the plot's destinations, opened before the run: a bad path fails now, not
/// after it.
fn open_destinations(
    output: &OutputSettings,
    plot_path: Option<&Path>,
) -> anyhow::Result<(Destination, Option<Destination>)> {
    let destination = output.open()?;
    let plot = plot_path
        .map(|path| Destination::open(Some(path), "--plot"))
        .transpose()?;
    Ok((destination, plot))
}

/// What a finished run says about itself, for [`finish_run`].
struct Run<'a> {
    complete: bool,
    /// No column trained at all: the report holds only reasons.
    nothing_trained: bool,
    /// Each column's label, status and reason.
    columns: Vec<(String, &'a str, Option<String>)>,
    /// One line per column that computed wrong results.
    wrong: Vec<String>,
}

/// Ends a training command: the report (to stdout only when nothing trained, so that a file with an
/// earlier, good report is not overwritten by reasons), then the plot, then the exit code — 1 with
/// one line per column when nothing trained or a column computed wrong results.
fn finish_run<R: Render>(
    report: &R,
    run: &Run,
    destination: Destination,
    plot_destination: Option<Destination>,
    plot_path: Option<&Path>,
    format: Format,
    draw: fn(&R) -> anyhow::Result<String>,
) -> anyhow::Result<ExitCode> {
    let outcome = finished(run.complete);
    if run.nothing_trained {
        if destination.is_stdout() {
            emit(report, destination, format, Outcome::Done)?;
        }
        let lines = run
            .columns
            .iter()
            .map(|(label, status, reason)| {
                let reason = reason.as_deref().unwrap_or("no reason given");
                format!("{label} {status}: {reason}")
            })
            .collect();
        return Err(ColumnErrors(lines).into());
    }
    // The plot goes to PATH.partial too when the run was stopped.
    let plot_destination = plot_destination.map(|d| match outcome {
        Outcome::Stopped(_) => d.for_partial_report(),
        _ => d,
    });
    // The report first: whatever happens to the plot, the run is kept.
    let ending = emit(report, destination, format, outcome);
    if let (Some(plot_destination), Some(path)) = (plot_destination, plot_path) {
        let written = draw(report).and_then(|svg| plot_destination.write(&svg));
        written.with_context(|| {
            format!(
                "the report was written, but not the plot (--plot {})",
                path.display()
            )
        })?;
    }
    let code = ending?;
    // A column that computed wrong results makes the run a failure, its report the evidence.
    if !run.wrong.is_empty() {
        return Err(ColumnErrors(run.wrong.clone()).into());
    }
    Ok(code)
}

/// `hwbench scale`.
pub fn scale(
    settings: &ScaleSettings,
    plot_path: Option<&Path>,
    output: &OutputSettings,
) -> anyhow::Result<ExitCode> {
    let plan = planned(|| scale::plan::plan(settings))?;
    let (destination, plot_destination) = open_destinations(output, plot_path)?;
    let report = climb(&plan, output.redact);
    let run = scale_run(&report);
    finish_run(
        &report,
        &run,
        destination,
        plot_destination,
        plot_path,
        output.format,
        scale::plot::svg,
    )
}

/// Climbs the ladder on every column, stopping early on a stop signal.
fn climb(plan: &scale::plan::ScalePlan, redact: bool) -> ScaleReport {
    let mut report = scale::runner::run(plan);
    if redact {
        report.redact(&Redactor::for_this_machine().with(plan.columns.gpus.secrets()));
    }
    report
}

fn scale_run(report: &ScaleReport) -> Run<'_> {
    let measured = |c: &scale::results::ScaleColumn| {
        c.points
            .iter()
            .any(|p| p.status == scale::results::PointStatus::Measured)
    };
    Run {
        complete: report.complete,
        nothing_trained: report
            .devices
            .iter()
            .all(|c| !measured(c) && c.status != DeviceStatus::Interrupted),
        // A column that ran but measured no point says why through its first point.
        columns: report
            .devices
            .iter()
            .map(|c| {
                let why = c
                    .reason
                    .clone()
                    .or_else(|| c.points.first().and_then(|p| p.reason.clone()));
                let status = match c.status {
                    DeviceStatus::Ok => "measured no point",
                    other => other.words(),
                };
                (c.label.clone(), status, why)
            })
            .collect(),
        wrong: report
            .devices
            .iter()
            .filter_map(|c| {
                let (size, loss, expected, reference) =
                    scale::analysis::loss_disagreement(report, c)?;
                Some(format!(
                    "{} computed wrong results: its first loss at {size} is {loss}, {reference}'s {expected}",
                    c.label
                ))
            })
            .collect(),
    }
}

/// Plans with stop signals caught, so that Ctrl-C or SIGTERM from here on leaves nothing behind.
fn planned<P>(plan: impl FnOnce() -> anyhow::Result<P>) -> anyhow::Result<P> {
    process::catch_stop_signals().context("cannot catch Ctrl-C and SIGTERM")?;
    let plan = plan()?;
    if let Some(signal) = process::stop_signal() {
        return Err(Interrupted { signal }.into());
    }
    Ok(plan)
}

/// Trains, stopping early on a stop signal (the report then says it is incomplete).
fn train(plan: &Plan, redact: bool) -> TrainCompareReport {
    let mut report = runner::run_plan(plan);
    if redact {
        report.redact(&Redactor::for_this_machine().with(plan.columns.gpus.secrets()));
    }
    report
}

/// `hwbench report`: `info`, a quick `train-compare`, a quick `scale` and the versions, in one
/// document.
pub fn report(
    settings: &TrainSettings,
    scaling: &ScaleSettings,
    output: &OutputSettings,
) -> anyhow::Result<ExitCode> {
    let plan = planned(|| plan::plan(settings))?;
    // The same device options: the scale run's columns are the ones just planned.
    let scale_plan = scale::plan::plan_on(scaling, || Ok(plan.columns.clone()))?;
    let destination = output.open()?;
    let machine = collect_info(false);
    let training = runner::run_plan(&plan);
    // After a stop signal, the scale run is left out rather than started.
    let scaled = process::stop_signal()
        .is_none()
        .then(|| scale::runner::run(&scale_plan));
    let complete = training.complete && scaled.as_ref().is_some_and(|s| s.complete);
    let outcome = finished(complete);
    let mut report = BugReport::new(machine, training, scaled);
    if output.redact {
        report.redact(&Redactor::for_this_machine().with(plan.columns.gpus.secrets()));
    }
    emit(&report, destination, output.format, outcome)
}

/// `hwbench diff`: exit 0 when the reports agree, 1 when they differ, 2 on bad input.
pub fn diff(a: &Path, b: &Path, output: &OutputSettings) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    let redactor = output.redactor();
    let report = diff::diff_reports(&saved::read(a)?, &saved::read(b)?, redactor.as_ref())?;
    let outcome = if report.same {
        Outcome::Done
    } else {
        Outcome::Different
    };
    emit(&report, destination, output.format, outcome)
}

/// `hwbench fleet`: exit 0, or 1 when some files could not be read (the others are analysed).
pub fn fleet(inputs: &[PathBuf], output: &OutputSettings) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    let (nodes, skipped) = fleet::read_nodes(&fleet::report_files(inputs)?);
    let report = fleet::analyse(&nodes, skipped, output.redactor().as_ref())?;
    let outcome = match report.skipped.len() {
        0 => Outcome::Done,
        n => Outcome::Partly(format!(
            "{n} of {} files could not be read as reports (listed under Skipped); the others were analysed",
            n + report.nodes
        )),
    };
    emit(&report, destination, output.format, outcome)
}
