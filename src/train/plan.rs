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

/// What a training run should do, as plain values: from the command line, or one of the
/// constructors below.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// Devices as named (`cpu`, `cuda:N`); empty: the CPU and every usable CUDA GPU.
    pub devices: Vec<DeviceChoice>,
    /// One CPU column per thread count; empty: 1 and the usable CPUs.
    pub cpu_threads: Vec<usize>,
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
    /// The `hwbench-cuda` companion; `None`: `$HWBENCH_CUDA`, else next to hwbench.
    pub cuda_companion: Option<PathBuf>,
    /// Longest silence of a worker before it is called hung.
    pub worker_timeout: Duration,
    /// `Some(python)`: also run the PyTorch reference loop with that interpreter.
    pub pytorch: Option<PathBuf>,
}

impl TrainSettings {
    /// The course's loop.
    pub const EPOCHS: u64 = 20_000;
    pub const WARMUP_EPOCHS: u64 = 1_000;
    /// `--quick` and `hwbench report`: a few seconds instead of a minute.
    pub const QUICK_EPOCHS: u64 = 2_000;
    pub const QUICK_WARMUP_EPOCHS: u64 = 200;

    /// What `hwbench train-compare` does with no options.
    pub fn standard() -> Self {
        Self {
            devices: Vec::new(),
            cpu_threads: Vec::new(),
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
            cuda_companion: None,
            worker_timeout: Duration::from_secs(300),
            pytorch: None,
        }
    }

    /// The standard run, shortened to a few seconds.
    pub fn quick() -> Self {
        Self {
            epochs: Self::QUICK_EPOCHS,
            warmup_epochs: Self::QUICK_WARMUP_EPOCHS,
            ..Self::standard()
        }
    }
}

/// Everything needed to run the experiment, validated.
pub struct Plan {
    pub config: TrainConfig,
    /// The rows every column trains on, prepared once.
    pub data: Dataset,
    pub policies: Vec<SyncPolicy>,
    pub repeats: u32,
    pub warmup_epochs: u64,
    pub columns: Vec<Column>,
    /// Columns asked for but left out, one line each; copied into the report's `notes`.
    pub notes: Vec<String>,
}

/// One planned column: the device, what trains on it, and how its worker starts (or why it
/// cannot).
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
    let choices = no_duplicates(&settings.devices, "--devices", DeviceChoice::to_string)?;
    let threads = no_duplicates(&settings.cpu_threads, "--cpu-threads", usize::to_string)?;

    let wants_cpu = choices.is_empty() || choices.contains(&DeviceChoice::Cpu);
    let threads = if threads.is_empty() && wants_cpu {
        let usable = crate::info::cpu::probe().usable_cpus.unwrap_or(1);
        if usable > 1 { vec![1, usable] } else { vec![1] }
    } else {
        threads
    };
    let mut devices: Vec<DeviceSpec> = Vec::new();
    if wants_cpu {
        devices.extend(threads.iter().map(|&threads| DeviceSpec::Cpu { threads }));
    }

    let companion = companion::locate(settings.cuda_companion.as_deref());
    // `None`: every CUDA device this install can use (the default).
    let cuda_choices: Option<Vec<usize>> = (!choices.is_empty()).then(|| {
        choices
            .iter()
            .filter_map(|c| match c {
                DeviceChoice::Cuda(n) => Some(*n),
                DeviceChoice::Cpu => None,
            })
            .collect()
    });
    // The GPUs are asked for once, and only when a CUDA column may come of it.
    let needs_gpus = cuda_choices
        .as_ref()
        .map_or(companion.is_ok(), |c| !c.is_empty());
    let gpus = if needs_gpus {
        GpuSource::from_env().probe()
    } else {
        GpuSection::default()
    };
    let ordinals = cuda_choices.unwrap_or_else(|| cuda::visible_ordinals(&gpus));
    devices.extend(
        ordinals
            .into_iter()
            .map(|ordinal| DeviceSpec::Cuda { ordinal }),
    );

    let timeout = settings.worker_timeout;
    let mut notes = Vec::new();
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
        columns: columns
            .into_iter()
            .map(|(device, framework)| Column {
                device,
                framework,
                worker: worker_command(device, framework, &found),
            })
            .collect(),
        notes,
    })
}

/// The one place a worker's command is made: which program trains `framework` on `device`,
/// with which arguments, or why it cannot.
fn worker_command(
    device: DeviceSpec,
    framework: Framework,
    found: &Found,
) -> Result<WorkerCommand, String> {
    let mut timeout = found.timeout;
    let (program, args, env, script) = match framework {
        Framework::Candle => {
            let program = match device {
                DeviceSpec::Cpu { .. } => cpu::worker_program()?,
                DeviceSpec::Cuda { ordinal } => {
                    cuda::worker_program(ordinal, &found.gpus, &found.companion)?
                }
            };
            (program, vec!["worker"], Vec::new(), None)
        }
        Framework::Pytorch => {
            let (python, torch) = found
                .torch
                .as_ref()
                .ok_or("PyTorch was not found (--with-pytorch)")?;
            torch.can_train_on(device)?;
            timeout = pytorch::worker_timeout(timeout);
            let version = ("HWBENCH_VERSION", env!("CARGO_PKG_VERSION"));
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
        env: env
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout,
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
