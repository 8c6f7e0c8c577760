//! The command line: clap definitions, validation into a plan, and dispatch to the commands.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::error::{self, Interrupted, UsageError};
use crate::info::{self, GpuSource};
use crate::output::Destination;
use crate::render::{self, Format, Style};
use crate::train::compare::{self, Plan, PlannedDevice};
use crate::train::model::InitWeights;
use crate::train::{DeviceSpec, Framework, SyncPolicy, TrainConfig, companion, worker};

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
    /// One document for a bug ticket: info, a quick train-compare and versions [default format:
    /// Markdown, under GitHub's 65,536-character limit].
    #[command(mut_arg("format", |format| format.default_value("markdown")))]
    Report(ReportArgs),
    /// Show what differs between two JSON reports of the same kind (exit 0 same, 1 different).
    Diff(DiffArgs),
    /// Group many JSON reports (files or folders) into identical nodes and list the outliers.
    Fleet(FleetArgs),
    /// Print a shell completion script, e.g. `hwbench completions bash > /etc/bash_completion.d/hwbench`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `hwbench man > hwbench.1`.
    Man,
    /// Serve one device's training session over stdin/stdout (used by train-compare).
    #[command(hide = true)]
    Worker,
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
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
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Devices to train on, e.g. cpu,cuda:0 [default: the CPU and every usable CUDA GPU].
    #[arg(long, value_delimiter = ',', value_parser = parse_device)]
    pub devices: Vec<DeviceChoice>,
    /// CPU thread counts, one column each [default: 1 and the usable CPUs].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub cpu_threads: Vec<u16>,
    /// Epochs per run (1 to 100000000).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub epochs: u64,
    /// SGD learning rate (finite, > 0).
    #[arg(long, default_value_t = 0.01, value_parser = parse_lr)]
    pub lr: f64,
    /// Hidden units, 1 to 4096 [default: 10, or what --init-weights holds].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub hidden: Option<u16>,
    /// Read the loss back every k epochs, one row group each; 0 = only once at the end.
    #[arg(long, value_delimiter = ',', default_value = "1,100,2000,0")]
    pub sync_every: Vec<SyncPolicy>,
    /// Timed runs per device and policy (after an untimed warm-up).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeats: u32,
    /// Epochs of the untimed warm-up run before each policy (capped at --epochs).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub warmup_epochs: u64,
    /// Draw initial weights from this seed (hwbench's generator, PyTorch's nn.Linear ranges)
    /// [default: the PyTorch reference run's weights when --hidden is 10, else seed 0].
    #[arg(long, conflicts_with = "init_weights")]
    pub seed: Option<u32>,
    /// Start from these weights: fc1.weight [hidden,4], fc1.bias, fc2.weight [3,hidden], fc2.bias.
    #[arg(long, value_name = "FILE.safetensors")]
    pub init_weights: Option<PathBuf>,
    /// random_state of scikit-learn's train_test_split(test_size=0.2).
    #[arg(long, default_value_t = 42)]
    pub split_seed: u32,
    /// Also write every device's loss curve as an SVG chart.
    #[arg(long, value_name = "PATH.svg")]
    pub plot: Option<PathBuf>,
    /// The hwbench-cuda companion to use [default: $HWBENCH_CUDA, else next to hwbench].
    #[arg(long, value_name = "PATH")]
    pub cuda_companion: Option<PathBuf>,
    /// Seconds a device's worker may stay silent before it is called hung and stopped.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_timeout: u64,
    /// A few seconds instead of a minute: 2000 epochs, 200-epoch warm-ups.
    #[arg(long, conflicts_with_all = ["epochs", "warmup_epochs"])]
    pub quick: bool,
    #[command(flatten)]
    pub pytorch: PytorchArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// --quick: epochs and warm-up epochs.
const QUICK: (u64, u64) = (2_000, 200);

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub pytorch: PytorchArgs,
}

#[derive(Args, Debug)]
pub struct PytorchArgs {
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
pub struct DiffArgs {
    /// The first report (`hwbench info --format json` or `train-compare --format json`).
    pub a: PathBuf,
    /// The second report, of the same kind.
    pub b: PathBuf,
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

/// A device as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Cuda(usize),
}

fn parse_device(text: &str) -> Result<DeviceChoice, String> {
    let text = text.trim();
    match text {
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda(0)),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(DeviceChoice::Cuda)
            .ok_or_else(|| format!("unknown device '{text}': use cpu, cuda or cuda:N")),
    }
}

fn parse_lr(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 => Ok(lr),
        _ => Err(format!(
            "'{text}' is not a usable learning rate: give a finite number > 0, e.g. 0.01"
        )),
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Parses the command line, runs, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => error::exit_code(&e),
        Err(e) => {
            eprintln!("Error: {e:#}");
            error::exit_code(&e)
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Info(args) => done(info_command(&args)),
        Command::TrainCompare(args) => done(train_compare(&args)),
        Command::Report(args) => done(report_command(args)),
        Command::Diff(args) => diff_command(&args),
        Command::Fleet(args) => done(fleet_command(&args)),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hwbench", &mut script);
            done(Destination::Stdout.write(&String::from_utf8_lossy(&script)))
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            done(Destination::Stdout.write(&String::from_utf8_lossy(&page)))
        }
        // The worker reports its own errors on its protocol; only the exit code is left to give.
        Command::Worker => Ok(ExitCode::from(worker::serve())),
    }
}

fn style_for(destination: &Destination) -> Style {
    if destination.is_stdout() {
        Style::for_stdout(std::io::stdout().is_terminal())
    } else {
        Style::plain()
    }
}

fn info_command(args: &InfoArgs) -> anyhow::Result<()> {
    let destination = Destination::open(args.output.output.as_deref(), "-o")?;
    let mut report = info::collect(&GpuSource::from_env());
    if !args.output.no_redact {
        crate::redact::info(&mut report);
    }
    let text = render::render(&report, args.output.format, style_for(&destination))?;
    destination.write(&text)
}

/// Like `diff`: exit 0 when the reports agree, 1 when they differ, 2 on bad input.
fn diff_command(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let destination = Destination::open(args.output.output.as_deref(), "-o")?;
    let report = crate::diff::compare(&args.a, &args.b)?;
    let text = render::render(&report, args.output.format, style_for(&destination))?;
    destination.write(&text)?;
    Ok(if report.same {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn fleet_command(args: &FleetArgs) -> anyhow::Result<()> {
    let destination = Destination::open(args.output.output.as_deref(), "-o")?;
    let files = crate::fleet::report_files(&args.inputs)?;
    let report = crate::fleet::analyse(&files)?;
    let text = render::render(&report, args.output.format, style_for(&destination))?;
    destination.write(&text)
}

fn train_compare(args: &TrainArgs) -> anyhow::Result<()> {
    let plan = plan(args)?;
    // Fail on a bad path now, not after the run.
    let destination = Destination::open(args.output.output.as_deref(), "-o")?;
    let plot = match &args.plot {
        Some(path) => Some(Destination::open(Some(path), "--plot")?),
        None => None,
    };
    let mut report = run_plan(&plan)?;
    report.redacted = !args.output.no_redact;
    if let Some(plot) = plot {
        plot.write(&crate::train::plot::svg(&report)?)?;
    }
    let text = render::render(&report, args.output.format, style_for(&destination))?;
    destination.write(&text)?;
    if report.complete {
        Ok(())
    } else {
        Err(Interrupted.into())
    }
}

/// Trains, stopping early on Ctrl-C (the report then says it is incomplete).
fn run_plan(plan: &Plan) -> anyhow::Result<compare::CompareReport> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(compare::run(plan, &INTERRUPTED))
}

/// `info`, then `train-compare --quick` with every default, in one document.
fn report_command(args: ReportArgs) -> anyhow::Result<()> {
    let Command::TrainCompare(mut training) =
        Cli::try_parse_from(["hwbench", "train-compare", "--quick"])?.command
    else {
        unreachable!("parsed as train-compare");
    };
    training.pytorch = args.pytorch;
    let plan = plan(&training)?;
    let output = &args.output;
    let destination = Destination::open(output.output.as_deref(), "-o")?;

    let mut machine = info::collect(&GpuSource::from_env());
    if !output.no_redact {
        crate::redact::info(&mut machine);
    }
    let mut training = run_plan(&plan)?;
    training.redacted = !output.no_redact;
    let complete = training.complete;
    let report = crate::report::BugReport::new(machine, training);
    let text = render::render(&report, output.format, style_for(&destination))?;
    destination.write(&text)?;
    if complete {
        Ok(())
    } else {
        Err(Interrupted.into())
    }
}

/// Validates the arguments and decides every column, before anything trains.
fn plan(args: &TrainArgs) -> anyhow::Result<Plan> {
    let init = initial_weights(args)?;
    let policies = no_duplicates(&args.sync_every, "--sync-every", |p| p.every.to_string())?;
    let choices = no_duplicates(&args.devices, "--devices", |d| format!("{d:?}"))?;
    let threads: Vec<usize> = no_duplicates(&args.cpu_threads, "--cpu-threads", u16::to_string)?
        .into_iter()
        .map(usize::from)
        .collect();

    let usable = info::cpu::probe().usable_cpus.unwrap_or(1);
    let threads = if threads.is_empty() {
        let mut default = vec![1];
        if usable > 1 {
            default.push(usable);
        }
        default
    } else {
        threads
    };

    let timeout = Duration::from_secs(args.worker_timeout);
    let mut devices = Vec::new();
    // `None`: every CUDA device this install can use (the default).
    let cuda_choices: Option<Vec<usize>> = if choices.is_empty() {
        devices.extend(cpu_columns(&threads, timeout));
        None
    } else {
        for choice in &choices {
            if *choice == DeviceChoice::Cpu {
                devices.extend(cpu_columns(&threads, timeout));
            }
        }
        Some(
            choices
                .iter()
                .filter_map(|c| match c {
                    DeviceChoice::Cuda(n) => Some(*n),
                    DeviceChoice::Cpu => None,
                })
                .collect(),
        )
    };
    let companion = companion::locate(args.cuda_companion.as_deref());
    // The GPUs are asked for once, and only when a CUDA column may come of it.
    let needs_gpus = cuda_choices
        .as_ref()
        .map_or(companion.is_ok(), |c| !c.is_empty());
    if needs_gpus {
        let gpus = GpuSource::from_env().probe();
        let ordinals = cuda_choices.unwrap_or_else(|| usable_cuda_devices(&gpus));
        for ordinal in ordinals {
            devices.push(PlannedDevice {
                device: DeviceSpec::Cuda { ordinal },
                framework: Framework::Candle,
                worker: cuda_worker(ordinal, &gpus, &companion, timeout),
            });
        }
    }

    let mut notes = Vec::new();
    if args.pytorch.with_pytorch {
        let candle: Vec<DeviceSpec> = devices.iter().map(|d| d.device).collect();
        match crate::train::pytorch::columns(&candle, &args.pytorch.python, timeout) {
            Ok(columns) => devices.extend(columns),
            Err(note) => notes.push(note),
        }
    }

    let (epochs, warmup_epochs) = if args.quick {
        QUICK
    } else {
        (args.epochs, args.warmup_epochs)
    };
    Ok(Plan {
        config: TrainConfig {
            hidden: init.hidden,
            lr: args.lr,
            epochs,
            split_seed: args.split_seed,
            init,
        },
        policies,
        repeats: args.repeats,
        warmup_epochs,
        devices,
        notes,
    })
}

fn cpu_columns(threads: &[usize], timeout: Duration) -> Vec<PlannedDevice> {
    threads
        .iter()
        .map(|&threads| PlannedDevice {
            device: DeviceSpec::Cpu { threads },
            framework: Framework::Candle,
            worker: compare::cpu_worker(threads, timeout),
        })
        .collect()
}

/// The CUDA ordinals a framework would see: the GPUs NVML reports, limited by
/// `CUDA_VISIBLE_DEVICES`.
fn usable_cuda_devices(gpus: &crate::info::gpu::GpuSection) -> Vec<usize> {
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let count = match visible.as_deref() {
        Some(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .count()
            .min(gpus.devices.len()),
        None => gpus.devices.len(),
    };
    (0..count).collect()
}

/// The command that trains on `cuda:ordinal`, or why that device cannot be used.
fn cuda_worker(
    ordinal: usize,
    gpus: &crate::info::gpu::GpuSection,
    companion: &Result<(PathBuf, &'static str), String>,
    timeout: Duration,
) -> Result<worker::WorkerCommand, String> {
    let (program, _) = companion.clone()?;
    if !gpus.nvml_loaded {
        return Err(gpus
            .message
            .clone()
            .unwrap_or_else(|| "no NVIDIA driver".to_string()));
    }
    if ordinal >= gpus.devices.len() {
        let count = gpus.devices.len();
        return Err(format!(
            "cuda:{ordinal} is out of range: this machine has {count} CUDA device{}{}",
            if count == 1 { "" } else { "s" },
            if count > 0 {
                format!(" (cuda:0 to cuda:{})", count - 1)
            } else {
                String::new()
            }
        ));
    }
    Ok(worker::WorkerCommand {
        program,
        args: vec!["worker".to_string()],
        env: Vec::new(),
        timeout,
        script: None,
    })
}

fn initial_weights(args: &TrainArgs) -> anyhow::Result<InitWeights> {
    if let Some(path) = &args.init_weights {
        let init = InitWeights::from_file(path).map_err(UsageError)?;
        if let Some(hidden) = args.hidden.map(usize::from)
            && init.hidden != hidden
        {
            return Err(UsageError::new(format!(
                "--hidden {hidden} disagrees with --init-weights, whose fc1.weight has {} hidden units",
                init.hidden
            ))
            .into());
        }
        return Ok(init);
    }
    let hidden = args.hidden.map_or(10, usize::from);
    Ok(match args.seed {
        Some(seed) => InitWeights::from_seed(seed, hidden),
        None if hidden == 10 => InitWeights::reference(),
        None => InitWeights::from_seed(0, hidden),
    })
}

fn no_duplicates<T: Clone + PartialEq>(
    values: &[T],
    flag: &str,
    show: impl Fn(&T) -> String,
) -> anyhow::Result<Vec<T>> {
    for (i, value) in values.iter().enumerate() {
        if values[..i].contains(value) {
            return Err(UsageError::new(format!(
                "{flag} lists {} twice: give each once",
                show(value)
            ))
            .into());
        }
    }
    Ok(values.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
