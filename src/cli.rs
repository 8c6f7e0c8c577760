//! The command line: clap definitions (also the source of `completions` and `man`), their
//! conversion into plain settings, and dispatch to `commands`. Nothing here probes, plans or runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::commands::{self, OutputSettings};
use crate::engine::columns::DeviceSettings;
use crate::engine::device::DeviceChoice;
use crate::engine::fused::KernelChoice;
use crate::engine::synthetic::Size;
use crate::engine::{SyncPolicy, limits};
use crate::error::{self, Interrupted, UsageError};
use crate::info::findings::Severity;
use crate::output::Destination;
use crate::render::Format;
use crate::scale::ScaleSettings;
use crate::train::plan::TrainSettings;
use crate::worker;

#[derive(Parser, Debug)]
#[command(
    name = "hwbench",
    version,
    about = "What machine is this, and how fast does a small model train on each of its devices?",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Report the CPU, memory, OS and NVIDIA GPUs (through NVML).
    Info(InfoArgs),
    /// Train the iris MLP on every device and compare per-epoch cost and the cost of syncing.
    TrainCompare(TrainArgs),
    /// Train the same MLP at sizes from the course's up to ones that fill the hardware: where each
    /// device pays off, and how close it gets to its FP32 peak.
    Scale(ScaleArgs),
    /// One document for a bug ticket: info, a quick train-compare, a quick scale and versions [default format:
    /// Markdown, under GitHub's 65,536-character limit].
    #[command(mut_arg("format", |format| format.help(
        "Output format [default: markdown, or what -o's extension says: .json, .md/.markdown, .prom, anything else Markdown]"
    )))]
    Report(ReportArgs),
    /// Show what differs between two JSON reports of the same kind — info, train-compare, scale or
    /// report (exit 0 same, 1 different).
    Diff(DiffArgs),
    /// Group many JSON reports (files or folders) into identical nodes and list the outliers.
    Fleet(FleetArgs),
    /// Print a shell completion script, e.g. `hwbench completions bash > /etc/bash_completion.d/hwbench`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): `hwbench man > hwbench.1`, one subcommand's (`hwbench man
    /// info`), or write every page into a folder (`hwbench man --out DIR`).
    Man(ManArgs),
    /// Serve one device's job over stdin/stdout (used by train-compare and scale).
    #[command(hide = true)]
    Worker,
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Output format [default: table, or what -o's extension says: .json, .md/.markdown, .prom].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to this file (atomically) instead of stdout.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Keep identifying values (hostname, GPU UUIDs and serials) instead of placeholders.
    #[arg(long)]
    pub no_redact: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// The hwbench-cuda companion to describe [default: $HWBENCH_CUDA, else next to hwbench].
    #[arg(long, value_name = "PATH")]
    pub cuda_companion: Option<PathBuf>,
    /// Exit 1 when a finding of at least this severity exists (after writing the report): for a
    /// Slurm prolog or a Kubernetes readiness check.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Run this Python and report its stack: its version, torch (its CUDA, cuDNN, whether it can
    /// use the GPUs), numpy and NVIDIA's pip wheels. Imports torch: a second or more [default:
    /// the python3 on PATH, read from its files without running it; `hwbench report` runs
    /// python3].
    #[arg(long, value_name = "PATH", env = "HWBENCH_PYTHON")]
    pub python: Option<PathBuf>,
}

/// The least severity `--fail-on` fails on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Warning,
    Error,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub devices: DeviceArgs,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=limits::EPOCHS), help = format!(
        "Epochs of the course's run (1 to {}); given, every timed run trains them all [default: {}, timed within --time-budget]",
        limits::EPOCHS, TrainSettings::EPOCHS
    ))]
    pub epochs: Option<u64>,
    /// SGD learning rate (finite, > 0).
    #[arg(long, default_value_t = TrainSettings::LR, value_parser = parse_lr)]
    pub lr: f64,
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=limits::HIDDEN as i64), help = format!(
        "Hidden units, 1 to {} [default: {}, or what --init-weights holds]",
        limits::HIDDEN, TrainSettings::HIDDEN
    ))]
    pub hidden: Option<u16>,
    /// Read the loss back every k epochs, one row group each; 0 = only once at the end.
    #[arg(long, value_delimiter = ',', default_value = sync_every_default())]
    pub sync_every: Vec<SyncPolicy>,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(limits::REPEATS)), help = format!(
        "Exactly this many timed runs of every epoch per device and policy (after an untimed warm-up); the time budget is off [default: {} to {} shorter runs, until each median is known within ±{}%]",
        crate::engine::runs::Runs::MIN, crate::engine::runs::Runs::MAX, crate::engine::runs::Runs::TARGET * 100.0
    ))]
    pub repeats: Option<u32>,
    #[arg(long, value_name = "SECONDS", default_value_t = TrainSettings::TIME_BUDGET.as_secs(), help = format!(
        "Seconds the default run may take: each column times as many epochs as its share allows (at least {}) and the {}-epoch totals are derived from them; 0 = no budget",
        crate::train::plan::MIN_TIMED_EPOCHS, TrainSettings::EPOCHS
    ))]
    pub time_budget: u64,
    /// The course's loop exactly: every timed run trains all --epochs (no time budget).
    #[arg(long, conflicts_with_all = ["time_budget", "quick"])]
    pub full: bool,
    /// Epochs of the untimed warm-up run before each policy (capped at --epochs).
    #[arg(long, default_value_t = TrainSettings::WARMUP_EPOCHS, value_parser = clap::value_parser!(u64).range(1..=limits::EPOCHS))]
    pub warmup_epochs: u64,
    /// Draw initial weights from this seed (hwbench's generator, PyTorch's nn.Linear ranges)
    /// [default: the PyTorch reference run's weights when --hidden is 10, else seed 0].
    #[arg(long, conflicts_with = "init_weights")]
    pub seed: Option<u32>,
    /// Start from these weights: fc1.weight [hidden,4], fc1.bias, fc2.weight [3,hidden], fc2.bias.
    #[arg(long, value_name = "FILE.safetensors")]
    pub init_weights: Option<PathBuf>,
    /// random_state of scikit-learn's train_test_split(test_size=0.2).
    #[arg(long, default_value_t = TrainSettings::SPLIT_SEED)]
    pub split_seed: u32,
    /// Also write every device's loss curve as an SVG chart.
    #[arg(long, value_name = "PATH.svg")]
    pub plot: Option<PathBuf>,
    #[arg(long, conflicts_with_all = ["epochs", "warmup_epochs", "time_budget"], help = quick_help())]
    pub quick: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub devices: DeviceArgs,
    /// The ladder: sizes IN:HIDDEN:CLASSES:ROWS, comma-separated, climbed in order of work
    /// [default: 9 sizes from 4:10:3:120 (the course's) to 1024:4096:1000:16384].
    #[arg(long, value_delimiter = ',', value_name = "SIZES")]
    pub sizes: Vec<Size>,
    /// A device stops climbing when an epoch of the next size would take longer than this many
    /// seconds [default: 1, or 0.25 with --quick].
    #[arg(long, value_name = "SECONDS", value_parser = parse_epoch_seconds)]
    pub max_epoch_seconds: Option<f64>,
    /// Six sizes and shorter timed runs: a few seconds.
    #[arg(long)]
    pub quick: bool,
    /// Seed of the synthetic rows and initial weights (the same on every device and in PyTorch).
    #[arg(long, default_value_t = ScaleSettings::SEED)]
    pub seed: u32,
    /// SGD learning rate (finite, > 0).
    #[arg(long, default_value_t = ScaleSettings::LR, value_parser = parse_lr)]
    pub lr: f64,
    /// Which kernels train: auto (the device's own: hwbench's fused epoch on the CPU, candle's
    /// operations on CUDA), fused or stock (candle's operations), to measure one against the other.
    #[arg(long, value_enum, default_value_t = KernelChoice::Auto)]
    pub kernels: KernelChoice,
    /// Also write time per epoch against FLOP per epoch (log–log) as an SVG chart.
    #[arg(long, value_name = "PATH.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_epoch_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0 => Ok(seconds),
        _ => Err(format!(
            "'{text}' is not a number of seconds: give a number above 0 and at most 3600, e.g. 0.5"
        )),
    }
}

/// `--sync-every`'s default, as typed: "1,100,2000,0".
fn sync_every_default() -> &'static str {
    static TYPED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TYPED.get_or_init(|| {
        TrainSettings::SYNC_EVERY
            .iter()
            .map(|p| p.every.to_string())
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn quick_help() -> String {
    format!(
        "A few seconds instead of a minute: {} epochs, {}-epoch warm-ups",
        TrainSettings::QUICK_EPOCHS,
        TrainSettings::QUICK_WARMUP_EPOCHS
    )
}

/// Which devices train, and how their workers start: shared by `train-compare` and `report`.
#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// Devices to train on, e.g. cpu,cuda:0, or all [default: the CPU and each model of CUDA GPU
    /// here; all: every GPU, identical ones included].
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceChoice>,
    /// CPU thread counts, one column each [default: 1 and the usable CPUs].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=limits::THREADS as i64))]
    pub cpu_threads: Vec<u16>,
    /// The hwbench-cuda companion to use [default: $HWBENCH_CUDA, else next to hwbench].
    #[arg(long, value_name = "PATH")]
    pub cuda_companion: Option<PathBuf>,
    /// Seconds a device's worker may stay silent before it is called hung and stopped.
    #[arg(long, default_value_t = DeviceSettings::WORKER_TIMEOUT.as_secs(), value_parser = parse_seconds)]
    pub worker_timeout: u64,
    /// Also run the reference PyTorch loop (shipped inside hwbench) on the CPU and every CUDA
    /// device, with the same data, weights, epochs and sync policies.
    #[arg(long)]
    pub with_pytorch: bool,
    /// The Python that has torch, for --with-pytorch (started isolated, `-I`).
    #[arg(
        long,
        value_name = "PATH",
        env = "HWBENCH_PYTHON",
        default_value = "python3"
    )]
    pub python: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub devices: DeviceArgs,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The subcommand whose page to print, e.g. info [default: the top page].
    pub page: Option<String>,
    /// Write hwbench.1 and one page per subcommand (hwbench-info.1, …) into this folder.
    #[arg(long, value_name = "DIR", conflicts_with = "page")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first report: the `--format json` output of `info`, `train-compare`, `scale` or
    /// `report`.
    pub a: PathBuf,
    /// The second report, of the same kind.
    pub b: PathBuf,
    /// A timing counts as changed only when it moved by more than this beyond both runs' noise
    /// (the faster report's fastest runs all ahead of the other's fastest by it): "10%", "5",
    /// "0.5%".
    #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_percent)]
    pub threshold: f64,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct FleetArgs {
    /// Report files, or folders holding them (every *.json inside), all of one kind.
    #[arg(required = true, value_name = "FILES|DIR")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_seconds(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds >= 1 => Ok(seconds),
        _ => Err(format!(
            "'{text}' is not a number of seconds: give a whole number of 1 or more, e.g. 300"
        )),
    }
}

/// "10%" or "10" → 0.10; between 0 and 1000%.
fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(percent) if (0.0..=1000.0).contains(&percent) => Ok(percent / 100.0),
        _ => Err(format!(
            "'{text}' is not a percentage between 0 and 1000: give e.g. 10% or 5"
        )),
    }
}

fn parse_lr(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        // The model computes in float32: a rate it cannot hold would overflow at the first step.
        Ok(lr) if lr > 0.0 && (lr as f32).is_finite() => Ok(lr),
        _ => Err(format!(
            "'{text}' is not a usable learning rate: give a number > 0 that float32 holds (at most 3.4e38), e.g. 0.01"
        )),
    }
}

impl OutputArgs {
    /// The settings, with the format `--format` names, else the one `-o`'s extension says, else
    /// `default`.
    fn settings_or(&self, default: Format) -> OutputSettings {
        let from_extension = self
            .output
            .as_deref()
            .and_then(|path| path.extension())
            .and_then(|extension| match extension.to_str()? {
                "json" => Some(Format::Json),
                "md" | "markdown" => Some(Format::Markdown),
                "prom" => Some(Format::Prometheus),
                _ => None,
            });
        OutputSettings {
            format: self.format.or(from_extension).unwrap_or(default),
            path: self.output.clone(),
            redact: !self.no_redact,
        }
    }

    fn settings(&self) -> OutputSettings {
        self.settings_or(Format::Table)
    }
}

impl DeviceArgs {
    fn settings(&self) -> DeviceSettings {
        DeviceSettings {
            choices: self.devices.clone(),
            cpu_threads: self.cpu_threads.iter().map(|&t| usize::from(t)).collect(),
            cuda_companion: self.cuda_companion.clone(),
            worker_timeout: Duration::from_secs(self.worker_timeout),
            pytorch: self.with_pytorch.then(|| self.python.clone()),
        }
    }

    /// Fills in the device part of `settings`.
    fn apply(&self, settings: TrainSettings) -> TrainSettings {
        TrainSettings {
            devices: self.settings(),
            ..settings
        }
    }
}

impl ScaleArgs {
    fn settings(&self) -> ScaleSettings {
        let base = if self.quick {
            ScaleSettings::quick()
        } else {
            ScaleSettings::standard()
        };
        ScaleSettings {
            devices: self.devices.settings(),
            sizes: if self.sizes.is_empty() {
                base.sizes.clone()
            } else {
                self.sizes.clone()
            },
            max_epoch_s: self.max_epoch_seconds.unwrap_or(base.max_epoch_s),
            seed: self.seed,
            lr: self.lr,
            kernels: self.kernels,
            ..base
        }
    }
}

impl TrainArgs {
    fn settings(&self) -> TrainSettings {
        let base = if self.quick {
            TrainSettings::quick()
        } else {
            // Epochs or repeats given, or --full: the user asked for exact numbers.
            let exact = self.full
                || self.epochs.is_some()
                || self.repeats.is_some()
                || self.time_budget == 0;
            TrainSettings {
                epochs: self.epochs.unwrap_or(TrainSettings::EPOCHS),
                warmup_epochs: self.warmup_epochs,
                time_budget: (!exact).then(|| Duration::from_secs(self.time_budget)),
                adaptive: !exact,
                ..TrainSettings::standard()
            }
        };
        self.devices.apply(TrainSettings {
            lr: self.lr,
            hidden: self.hidden.map(usize::from),
            sync_every: self.sync_every.clone(),
            repeats: self.repeats.unwrap_or(base.repeats),
            adaptive: base.adaptive && self.repeats.is_none(),
            seed: self.seed,
            init_weights: self.init_weights.clone(),
            split_seed: self.split_seed,
            ..base
        })
    }
}

/// `hwbench man`: the top page, one subcommand's, or every page into a folder.
fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let top = command.get_name().to_string();
    let page = |command: clap::Command| -> anyhow::Result<(String, String)> {
        let name = command.get_name().to_string();
        let man = clap_mangen::Man::new(command);
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        let roff = String::from_utf8_lossy(&roff);
        let subcommand = (name != top).then_some(name.as_str());
        Ok((
            man.get_filename(),
            crate::man::with_sections(&roff, subcommand),
        ))
    };
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    if let Some(dir) = &args.out {
        for command in std::iter::once(command.clone()).chain(subcommands) {
            let (name, text) = page(command)?;
            Destination::open(Some(&dir.join(&name)), "--out")?.write(&text)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let chosen = match &args.page {
        None => command,
        Some(name) => subcommands
            .into_iter()
            .find(|s| s.get_name() == name.as_str())
            .ok_or_else(|| {
                let pages: Vec<String> = command
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(|s| s.get_name().to_string())
                    .collect();
                UsageError::new(format!(
                    "no man page '{name}': give one of {}",
                    pages.join(", ")
                ))
            })?,
    };
    Destination::Stdout.write(&page(chosen)?.1)?;
    Ok(ExitCode::SUCCESS)
}

/// Parses the command line, runs, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    prepare_process();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                // Help and version are what was asked for, whole.
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                }
                _ => error::say(&format!("Error: {}", one_line(&e))),
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => error::exit_code(&e),
        Err(e) => {
            for line in error::lines(&e) {
                error::say(&line);
            }
            error::exit_code(&e)
        }
    }
}

/// Before anything else, while hwbench has one thread: a file-size limit (`ulimit -f`) makes a
/// write fail with a message instead of killing hwbench with SIGXFSZ (and leaving its temporary
/// file behind), and an environment variable set to nothing counts as unset, as for `-o`.
fn prepare_process() {
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    for name in ["HWBENCH_PYTHON", "HWBENCH_CUDA"] {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            // SAFETY: hwbench has not started a thread yet (this is the first thing `main` does),
            // so nothing reads the environment meanwhile.
            unsafe { std::env::remove_var(name) };
        }
    }
}

/// clap's error in one line: what is wrong, its tip if it has one, and where help is.
fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut what = lines
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .to_string();
    let mut rest: Vec<&str> = lines.collect();
    // "the argument '--quick' cannot be used with:" lists the other flags on the next lines.
    if what.ends_with(':') {
        let listed = rest
            .iter()
            .take_while(|l| {
                !l.starts_with("Usage:") && !l.starts_with("tip:") && !l.starts_with("For more")
            })
            .count();
        what = format!("{what} {}", rest[..listed].join(", "));
        rest.drain(..listed);
    }
    let tip = rest
        .iter()
        .find_map(|l| l.strip_prefix("tip: "))
        .map(|tip| format!("; {tip}"))
        .unwrap_or_default();
    // The subcommand, as typed: the first word that is not a flag, if it names one.
    let command = std::env::args_os()
        .skip(1)
        .filter_map(|a| a.into_string().ok())
        .find(|a| !a.starts_with('-'))
        .filter(|a| Cli::command().find_subcommand(a).is_some())
        .map_or_else(|| "hwbench".to_string(), |sub| format!("hwbench {sub}"));
    format!("{what}{tip} (see `{command} --help`)")
}

/// Runs the command the user asked for.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Info(args) => commands::info(
            &args.output.settings(),
            args.fail_on.map(|least| match least {
                FailOn::Warning => Severity::Warning,
                FailOn::Error => Severity::Error,
            }),
            args.cuda_companion.as_deref(),
            args.python.as_deref(),
        ),
        Command::TrainCompare(args) => commands::train_compare(
            &args.settings(),
            args.plot.as_deref(),
            &args.output.settings(),
        ),
        Command::Scale(args) => commands::scale(
            &args.settings(),
            args.plot.as_deref(),
            &args.output.settings(),
        ),
        Command::Report(args) => commands::report(
            &args.devices.apply(TrainSettings::quick()),
            &ScaleSettings {
                devices: args.devices.settings(),
                ..ScaleSettings::quick()
            },
            &args.output.settings_or(Format::Markdown),
            &args.devices.python,
        ),
        Command::Diff(args) => {
            commands::diff(&args.a, &args.b, args.threshold, &args.output.settings())
        }
        Command::Fleet(args) => commands::fleet(&args.inputs, &args.output.settings()),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hwbench", &mut script);
            Destination::Stdout.write(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man(args) => man(&args),
        // The worker reports its own errors on its protocol; only the exit code is left to give.
        Command::Worker => Ok(ExitCode::from(worker::serve())),
    }
}
