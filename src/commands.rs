//! What each subcommand does, from plain settings to an exit code. `cli` parses the command line
//! into these settings; the rooms below (`info`, `train`, `scale`, `bug_report`, `diff`, `fleet`)
//! do the work. A benchmark command reads plan → run → redact → analyse → emit, and nothing more
//! (redacted before it is analysed, so that the verdict quotes only what the report may show);
//! every command ends through [`emit`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::bug_report::BugReport;
use crate::engine::columns::Columns;
use crate::engine::measured::RunOutcome;
use crate::error::{ColumnErrors, Interrupted, UsageError};
use crate::info::findings::{self, Severity};
use crate::info::machine::Machine;
use crate::output::Destination;
use crate::process::signal_name;
use crate::redact::Redactor;
use crate::render::{self, Format, Render, Style};
use crate::scale::{self, ScaleSettings};
use crate::train::plan::TrainSettings;
use crate::{diff, fleet, info, process, saved, train};

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
        self.redact.then(Machine::host_redactor)
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
            crate::error::say(&format!("Error: {why}"));
            Ok(ExitCode::from(1))
        }
        Outcome::Stopped(signal) => {
            if let Some(path) = partial {
                crate::error::say(&format!(
                    "hwbench: interrupted ({}); the finished rows are in {}",
                    signal_name(signal),
                    path.display()
                ));
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
pub fn info(
    output: &OutputSettings,
    fail_on: Option<Severity>,
    cuda_companion: Option<&Path>,
    python: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    let machine = Machine::probe(cuda_companion);
    let mut report = info_report(&machine, python);
    if output.redact {
        report.redact(&machine.redactor());
    }
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

/// The machine with its findings, assessed on the true values (redaction works the findings out
/// again from what the report may show, so that they name no process).
fn info_report(machine: &Machine, python: Option<&Path>) -> info::InfoReport {
    let mut report = info::collect(machine);
    report.python = match python {
        Some(python) => info::python::probe(python),
        // A recorded machine's Python is not on this PATH.
        None if !machine.root.is_real() => info::python::PythonStack::not_asked(),
        None => std::env::var_os("PATH")
            .and_then(|path| info::python::files::read_from_path(&path))
            .unwrap_or_else(info::python::PythonStack::none_on_path),
    };
    report.findings = findings::assess(&report);
    report
}

/// The redactor for a report of this machine's runs: its hostname and its GPUs' secrets.
fn run_redactor(machine: &Machine, columns: &Columns) -> Redactor {
    machine.redactor().with(columns.gpus.secrets())
}

/// `hwbench train-compare`: plan → run → redact → analyse → emit.
pub fn train_compare(
    settings: &TrainSettings,
    plot_path: Option<&Path>,
    output: &OutputSettings,
) -> anyhow::Result<ExitCode> {
    let (machine, plan) = planned(settings.devices.cuda_companion.as_deref(), |machine| {
        train::plan::plan(settings, machine)
    })?;
    let destinations = open_destinations(output, plot_path)?;
    let mut report = train::runner::run(&plan, "train-compare");
    if output.redact {
        report.redact(&run_redactor(&machine, &plan.columns));
    }
    train::analyse(&mut report);
    finish_run(
        &report,
        report.complete,
        report.outcome(),
        destinations,
        output.format,
        train::plot::svg,
    )
}

/// `hwbench scale`: plan → run → redact → analyse → emit.
pub fn scale(
    settings: &ScaleSettings,
    plot_path: Option<&Path>,
    output: &OutputSettings,
) -> anyhow::Result<ExitCode> {
    let (machine, plan) = planned(settings.devices.cuda_companion.as_deref(), |machine| {
        scale::plan::plan(settings, machine)
    })?;
    let destinations = open_destinations(output, plot_path)?;
    let mut report = scale::runner::run(&plan, "scale");
    if output.redact {
        report.redact(&run_redactor(&machine, &plan.columns));
    }
    scale::analyse(&mut report);
    finish_run(
        &report,
        report.complete,
        report.outcome(),
        destinations,
        output.format,
        scale::plot::svg,
    )
}

/// The report's and the plot's destinations (with the plot's path, for messages), opened before
/// the run: a bad path fails now, not after it.
struct Destinations<'a> {
    report: Destination,
    plot: Option<(Destination, &'a Path)>,
}

fn open_destinations<'a>(
    output: &OutputSettings,
    plot_path: Option<&'a Path>,
) -> anyhow::Result<Destinations<'a>> {
    if let (Some(report), Some(plot)) = (&output.path, plot_path)
        && same_file(report, plot)
    {
        return Err(UsageError::new(format!(
            "-o and --plot both name {}: the plot would overwrite the report; give two files",
            plot.display()
        ))
        .into());
    }
    let report = output.open()?;
    let plot = plot_path
        .map(|path| Destination::open(Some(path), "--plot").map(|d| (d, path)))
        .transpose()?;
    Ok(Destinations { report, plot })
}

/// Whether two paths name one file: the same path once made absolute (and through links, where
/// the file exists).
fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    a != Path::new("-") && resolve(a) == resolve(b)
}

/// Ends a training command: the report (to stdout only when nothing trained, so that a file with an
/// earlier, good report is not overwritten by reasons), then the plot, then the exit code — 1 with
/// one line per column when nothing trained or a column computed wrong results.
fn finish_run<R: Render>(
    report: &R,
    complete: bool,
    run: RunOutcome,
    destinations: Destinations,
    format: Format,
    draw: fn(&R) -> anyhow::Result<String>,
) -> anyhow::Result<ExitCode> {
    let outcome = finished(complete);
    if let RunOutcome::NothingTrained(lines) = run {
        if destinations.report.is_stdout() {
            emit(report, destinations.report, format, Outcome::Done)?;
        }
        return Err(ColumnErrors(lines).into());
    }
    // The plot goes to PATH.partial too when the run was stopped.
    let plot = destinations.plot.map(|(d, path)| match outcome {
        Outcome::Stopped(_) => (d.for_partial_report(), path),
        _ => (d, path),
    });
    // The report first: whatever happens to the plot, the run is kept.
    let ending = emit(report, destinations.report, format, outcome);
    if let Some((destination, path)) = plot {
        let written = draw(report).and_then(|svg| destination.write(&svg));
        written.with_context(|| {
            format!(
                "the report was written, but not the plot (--plot {})",
                path.display()
            )
        })?;
    }
    let code = ending?;
    // A column that computed wrong results makes the run a failure, its report the evidence.
    if let RunOutcome::WrongResults(lines) = run {
        return Err(ColumnErrors(lines).into());
    }
    Ok(code)
}

/// Probes the machine and plans with stop signals caught, so that Ctrl-C or SIGTERM from here on
/// leaves nothing behind.
fn planned<P>(
    cuda_companion: Option<&Path>,
    plan: impl FnOnce(&Machine) -> anyhow::Result<P>,
) -> anyhow::Result<(Machine, P)> {
    process::catch_stop_signals().context("cannot catch Ctrl-C and SIGTERM")?;
    let machine = Machine::probe(cuda_companion);
    let plan = plan(&machine)?;
    if let Some(signal) = process::stop_signal() {
        return Err(Interrupted { signal }.into());
    }
    Ok((machine, plan))
}

/// `hwbench report`: `info`, a quick `train-compare`, a quick `scale` and the versions, in one
/// document — all of one machine, probed once.
pub fn report(
    settings: &TrainSettings,
    scaling: &ScaleSettings,
    output: &OutputSettings,
    python: &Path,
) -> anyhow::Result<ExitCode> {
    let (machine, (plan, scale_plan)) =
        planned(settings.devices.cuda_companion.as_deref(), |machine| {
            let plan = train::plan::plan(settings, machine)?;
            // The same device options: the scale run's columns are the ones just planned.
            let scale_plan = scale::plan::plan_on(scaling, plan.columns.clone(), machine)?;
            Ok((plan, scale_plan))
        })?;
    let destination = output.open()?;
    let info = info_report(&machine, Some(python));
    let training = train::runner::run(&plan, "report 1/2, train-compare");
    // After a stop signal, the scale run is left out rather than started.
    let scaled = process::stop_signal()
        .is_none()
        .then(|| scale::runner::run(&scale_plan, "report 2/2, scale"));
    let complete = training.complete && scaled.as_ref().is_some_and(|s| s.complete);
    let mut report = BugReport::new(info, training, scaled);
    if output.redact {
        report.redact(&run_redactor(&machine, &plan.columns));
    }
    train::analyse(&mut report.train_compare);
    if let Some(scaled) = &mut report.scale {
        scale::analyse(scaled);
    }
    emit(&report, destination, output.format, finished(complete))
}

/// `hwbench diff`: exit 0 when the reports agree, 1 when they differ, 2 on bad input.
pub fn diff(
    a: &Path,
    b: &Path,
    threshold: f64,
    output: &OutputSettings,
) -> anyhow::Result<ExitCode> {
    let destination = output.open()?;
    let redactor = output.redactor();
    let report = diff::diff_reports(
        &saved::read(a)?,
        &saved::read(b)?,
        redactor.as_ref(),
        threshold,
    )?;
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
    let (files, too_deep) = fleet::report_files(inputs)?;
    let (nodes, mut skipped) = fleet::read_nodes(&files);
    skipped.extend(too_deep);
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
