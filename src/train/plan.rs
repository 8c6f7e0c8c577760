//! From what the user asked for ([`TrainSettings`]) to what will run ([`Plan`]): the training
//! problem, the data, and one column per device and framework with the command of its worker,
//! or the reason it cannot run. Everything is checked here, before anything trains.

use std::path::PathBuf;
use std::time::Duration;

use super::data::{self, Dataset};
use super::device::{DeviceChoice, cpu, cuda};
use super::model::InitWeights;
use super::pytorch::{self, Torch};
use super::{DeviceSpec, Framework, SyncPolicy, TrainConfig};
use crate::companion;
use crate::error::UsageError;
use crate::info::GpuSource;
use crate::info::gpu::GpuSection;

/// Which devices train and how their workers start: shared by `train-compare`, `report` and
/// `scale`.
#[derive(Clone, Debug)]
pub struct DeviceSettings {
    /// Devices as named (`cpu`, `cuda:N`); empty: the CPU and every usable CUDA GPU.
    pub choices: Vec<DeviceChoice>,
    /// One CPU column per thread count; empty: 1 and the usable CPUs.
    pub cpu_threads: Vec<usize>,
    /// The `hwbench-cuda` companion; `None`: `$HWBENCH_CUDA`, else next to hwbench.
    pub cuda_companion: Option<PathBuf>,
    /// Longest silence of a worker before it is called hung.
    pub worker_timeout: Duration,
    /// `Some(python)`: also run the PyTorch loop with that interpreter.
    pub pytorch: Option<PathBuf>,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            choices: Vec::new(),
            cpu_threads: Vec::new(),
            cuda_companion: None,
            worker_timeout: Duration::from_secs(300),
            pytorch: None,
        }
    }
}

/// What a training run should do, as plain values: from the command line, or one of the
/// constructors below.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    pub devices: DeviceSettings,
    pub epochs: u64,
    /// Epochs of the untimed warm-up before each policy (capped at `epochs`).
    pub warmup_epochs: u64,
    pub lr: f64,
    /// Hidden units; `None`: 10, or what `init_weights` holds.
    pub hidden: Option<usize>,
    pub sync_every: Vec<SyncPolicy>,
    pub repeats: u32,
    pub seed: Option<u32>,
    pub init_weights: Option<PathBuf>,
    pub split_seed: u32,
    /// Time the whole run may take: each column times as many epochs as its share allows (at
    /// least [`MIN_TIMED_EPOCHS`]), and the totals for `epochs` are derived from them. `None`:
    /// every timed run trains `epochs`.
    pub time_budget: Option<Duration>,
}

impl TrainSettings {
    /// The course's loop.
    pub const EPOCHS: u64 = 20_000;
    pub const WARMUP_EPOCHS: u64 = 1_000;
    /// `--quick` and `hwbench report`: a few seconds instead of a minute.
    pub const QUICK_EPOCHS: u64 = 2_000;
    pub const QUICK_WARMUP_EPOCHS: u64 = 200;
    /// The default run fits in this, on any machine.
    pub const TIME_BUDGET: Duration = Duration::from_secs(60);

    /// What `hwbench train-compare` does with no options.
    pub fn standard() -> Self {
        Self {
            devices: DeviceSettings::default(),
            epochs: Self::EPOCHS,
            warmup_epochs: Self::WARMUP_EPOCHS,
            lr: 0.01,
            hidden: None,
            sync_every: vec![
                SyncPolicy::EVERY_EPOCH,
                SyncPolicy { every: 100 },
                SyncPolicy { every: 2000 },
                SyncPolicy::NEVER,
            ],
            repeats: 3,
            seed: None,
            init_weights: None,
            split_seed: 42,
            time_budget: Some(Self::TIME_BUDGET),
        }
    }

    /// The standard run, shortened to a few seconds.
    pub fn quick() -> Self {
        Self {
            epochs: Self::QUICK_EPOCHS,
            warmup_epochs: Self::QUICK_WARMUP_EPOCHS,
            time_budget: None,
            ..Self::standard()
        }
    }
}

/// The columns of a run (device × framework, each with its worker's command or why it cannot
/// run), decided once for any job.
#[derive(Clone)]
pub struct Columns {
    pub columns: Vec<Column>,
    /// Columns asked for but left out, one line each; copied into the report's `notes`.
    pub notes: Vec<String>,
    /// The GPUs as NVML reported them while planning (empty when no CUDA column was possible):
    /// their UUIDs and serials are what redaction must keep out of worker messages.
    pub gpus: GpuSection,
}

/// Everything needed to run the experiment, validated.
pub struct Plan {
    pub config: TrainConfig,
    /// The rows every column trains on, prepared once.
    pub data: Dataset,
    pub policies: Vec<SyncPolicy>,
    pub repeats: u32,
    pub warmup_epochs: u64,
    pub columns: Columns,
    /// See [`TrainSettings::time_budget`].
    pub time_budget: Option<Duration>,
}

/// The fewest epochs a budgeted run times: enough for a stable per-epoch cost and a sync cost
/// measured over a thousand syncs.
pub const MIN_TIMED_EPOCHS: u64 = 1_000;

/// How many epochs each timed run of a column trains, given what an epoch costs under each policy
/// (µs, from the warm-ups): as many as fit `budget` for `repeats` rounds of every policy, at least
/// [`MIN_TIMED_EPOCHS`], at most `epochs` (all of them without a budget).
pub fn timed_epochs(
    budget: Option<Duration>,
    per_epoch_us: &[f64],
    repeats: u32,
    epochs: u64,
) -> u64 {
    let Some(budget) = budget else {
        return epochs;
    };
    let round_us: f64 = per_epoch_us.iter().sum::<f64>() * f64::from(repeats);
    let fit = if round_us > 0.0 {
        (budget.as_secs_f64() * 1e6 / round_us).floor() as u64
    } else {
        epochs
    };
    fit.clamp(MIN_TIMED_EPOCHS.min(epochs), epochs)
}

/// One planned column: the device, what trains on it, and how its worker starts (or why it
/// cannot).
#[derive(Clone)]
pub struct Column {
    pub device: DeviceSpec,
    pub framework: Framework,
    pub worker: Result<WorkerCommand, String>,
}

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Longest silence tolerated between two messages before the worker is called hung.
    pub timeout: Duration,
    /// A script for `program` (an interpreter): written to a private temporary folder for the
    /// run and passed as the last argument.
    pub script: Option<&'static str>,
}

/// What planning found out about this machine, asked once each and only when needed.
struct Found {
    timeout: Duration,
    companion: Result<(PathBuf, &'static str), String>,
    gpus: GpuSection,
    torch: Option<(PathBuf, Torch)>,
}

/// Validates the settings and decides every column, before anything trains.
pub fn plan(settings: &TrainSettings) -> anyhow::Result<Plan> {
    let init = initial_weights(settings)?;
    let policies = no_duplicates(&settings.sync_every, "--sync-every", |p| {
        p.every.to_string()
    })?;
    let columns = columns(&settings.devices)?;
    Ok(Plan {
        data: data::prepare(settings.split_seed),
        config: TrainConfig {
            hidden: init.hidden,
            lr: settings.lr,
            epochs: settings.epochs,
            split_seed: settings.split_seed,
            init,
        },
        policies,
        repeats: settings.repeats,
        warmup_epochs: settings.warmup_epochs,
        columns,
        time_budget: settings.time_budget,
    })
}

/// Decides every column the device settings ask for: which exist here, and how each one's worker
/// starts.
pub fn columns(settings: &DeviceSettings) -> anyhow::Result<Columns> {
    let choices = no_duplicates(&settings.choices, "--devices", DeviceChoice::to_string)?;
    let threads = no_duplicates(&settings.cpu_threads, "--cpu-threads", usize::to_string)?;

    let wants_cpu = choices.is_empty()
        || choices.contains(&DeviceChoice::Cpu)
        || choices.contains(&DeviceChoice::All);
    let mut notes = Vec::new();
    let mut devices: Vec<DeviceSpec> = Vec::new();
    if wants_cpu {
        let usable = crate::info::cpu::probe(&crate::info::Root::from_env())
            .usable_cpus
            .unwrap_or(1);
        let threads = match threads.is_empty() {
            true if usable > 1 => vec![1, usable],
            true => vec![1],
            false => threads,
        };
        if let Some(most) = threads.iter().copied().filter(|&t| t > usable).max() {
            notes.push(format!(
                "cpu×{most} runs more threads than the {usable} CPU{} this process may use: they take turns, which slows every epoch of that column.",
                if usable == 1 { "" } else { "s" }
            ));
        }
        devices.extend(threads.iter().map(|&threads| DeviceSpec::Cpu { threads }));
    }

    let companion = companion::locate(settings.cuda_companion.as_deref());
    let asked_cuda: Vec<usize> = choices
        .iter()
        .filter_map(|c| match c {
            DeviceChoice::Cuda(n) => Some(*n),
            DeviceChoice::Cpu | DeviceChoice::All => None,
        })
        .collect();
    let every_gpu = choices.is_empty() || choices.contains(&DeviceChoice::All);
    // The GPUs are asked for once, and only when a CUDA column may come of it: one was named, or
    // all were and this install can train on CUDA.
    let gpus = if !asked_cuda.is_empty() || (every_gpu && companion.is_ok()) {
        GpuSource::from_env().probe()
    } else {
        GpuSection::default()
    };
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    for &ordinal in &asked_cuda {
        if let Some(why) = cuda::missing(ordinal, &gpus, visible.as_deref()) {
            return Err(UsageError::new(why).into());
        }
    }
    let ordinals = if choices.contains(&DeviceChoice::All) {
        (0..cuda::visible_count(&gpus, visible.as_deref())).collect()
    } else if choices.is_empty() {
        let (ordinals, note) = cuda::distinct_models(&gpus, visible.as_deref());
        notes.extend(note);
        ordinals
    } else {
        asked_cuda
    };
    devices.extend(
        ordinals
            .into_iter()
            .map(|ordinal| DeviceSpec::Cuda { ordinal }),
    );

    let timeout = settings.worker_timeout;
    let torch = match &settings.pytorch {
        Some(python) => match pytorch::probe(python, timeout) {
            Ok(torch) => Some((python.clone(), torch)),
            Err(why) => {
                notes.push(format!("No PyTorch columns: {why}."));
                None
            }
        },
        None => None,
    };
    let found = Found {
        timeout,
        companion,
        gpus,
        torch,
    };

    let mut columns: Vec<(DeviceSpec, Framework)> = devices
        .iter()
        .map(|&device| (device, Framework::Candle))
        .collect();
    if found.torch.is_some() {
        columns.extend(
            pytorch::devices(&devices)
                .into_iter()
                .map(|device| (device, Framework::Pytorch)),
        );
    }
    let columns = columns
        .into_iter()
        .map(|(device, framework)| Column {
            device,
            framework,
            worker: worker_command(device, framework, &found),
        })
        .collect();
    Ok(Columns {
        columns,
        notes,
        gpus: found.gpus,
    })
}

/// The one place a worker's command is made: which program trains `framework` on `device`,
/// with which arguments, or why it cannot.
fn worker_command(
    device: DeviceSpec,
    framework: Framework,
    found: &Found,
) -> Result<WorkerCommand, String> {
    let (program, args, env, script) = match framework {
        Framework::Candle => {
            let (program, env) = match device {
                DeviceSpec::Cpu { .. } => (cpu::worker_program()?, Vec::new()),
                DeviceSpec::Cuda { .. } => (
                    cuda::worker_program(&found.companion)?,
                    companion::environment(),
                ),
            };
            (program, vec!["worker"], env, None)
        }
        Framework::Pytorch => {
            let (python, torch) = found
                .torch
                .as_ref()
                .ok_or("PyTorch was not found (--with-pytorch)")?;
            torch.can_train_on(device)?;
            let version = (
                "HWBENCH_VERSION".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            );
            (
                python.clone(),
                vec!["-I"],
                vec![version],
                Some(pytorch::SCRIPT),
            )
        }
    };
    Ok(WorkerCommand {
        program,
        args: args.into_iter().map(str::to_string).collect(),
        env,
        timeout: found.timeout,
        script,
    })
}

fn initial_weights(settings: &TrainSettings) -> anyhow::Result<InitWeights> {
    if let Some(path) = &settings.init_weights {
        let init = InitWeights::from_file(path).map_err(UsageError)?;
        if let Some(hidden) = settings.hidden
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
    let hidden = settings.hidden.unwrap_or(10);
    Ok(match settings.seed {
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
    fn a_budget_decides_the_timed_epochs_between_the_floor_and_the_course() {
        let budget = Some(Duration::from_secs(20));
        // cuda:0 at 730 µs per epoch, four policies, three repeats: 20 s fit 2283 epochs.
        assert_eq!(timed_epochs(budget, &[730.0; 4], 3, 20_000), 2_283);
        // A fast CPU column fits the whole course.
        assert_eq!(timed_epochs(budget, &[30.0; 4], 3, 20_000), 20_000);
        // A very slow one still times the floor, never fewer.
        assert_eq!(
            timed_epochs(budget, &[50_000.0; 4], 3, 20_000),
            MIN_TIMED_EPOCHS
        );
        // A short course is never lengthened, and no budget means the course.
        assert_eq!(timed_epochs(budget, &[50_000.0; 4], 3, 300), 300);
        assert_eq!(timed_epochs(None, &[50_000.0; 4], 3, 20_000), 20_000);
    }
}
