//! The columns a run can have — device × framework, each with the command of its worker or the
//! reason it cannot run — decided once from the user's device settings and the machine, for any
//! job (`train-compare`, `scale`, `report`).

use std::path::PathBuf;
use std::time::Duration;

use super::Framework;
use super::device::{DeviceChoice, DeviceSpec, cpu, cuda};
use super::pytorch::{self, Torch};
use crate::companion;
use crate::error::UsageError;
use crate::info::gpu::GpuSection;
use crate::info::machine::Machine;

/// Which devices train and how their workers start: shared by `train-compare`, `report` and
/// `scale`.
#[derive(Clone, Debug)]
pub struct DeviceSettings {
    /// Devices as named (`cpu`, `cuda:N`); empty: the CPU and every usable CUDA GPU.
    pub choices: Vec<DeviceChoice>,
    /// One CPU column per thread count; empty: 1 and the usable CPUs.
    pub cpu_threads: Vec<usize>,
    /// The `hwbench-cuda` companion; `None`: `$HWBENCH_CUDA`, else next to hwbench. Read when
    /// the machine is probed (`Machine::probe`), which every column then goes by.
    pub cuda_companion: Option<PathBuf>,
    /// Longest silence of a worker before it is called hung.
    pub worker_timeout: Duration,
    /// `Some(python)`: also run the PyTorch loop with that interpreter.
    pub pytorch: Option<PathBuf>,
}

impl DeviceSettings {
    /// A worker silent this long is called hung.
    pub const WORKER_TIMEOUT: Duration = Duration::from_secs(300);
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            choices: Vec::new(),
            cpu_threads: Vec::new(),
            cuda_companion: None,
            worker_timeout: Self::WORKER_TIMEOUT,
            pytorch: None,
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
    /// A script for `program` (an interpreter), passed last as `-c SCRIPT`.
    pub script: Option<&'static str>,
}

/// What planning found out about this machine, asked once each and only when needed.
struct Found {
    timeout: Duration,
    companion: Result<(PathBuf, &'static str), String>,
    gpus: GpuSection,
    torch: Option<(PathBuf, Torch)>,
}

/// Decides every column the device settings ask for: which exist here, and how each one's worker
/// starts.
pub fn columns(settings: &DeviceSettings, machine: &Machine) -> anyhow::Result<Columns> {
    let choices = no_duplicates(&settings.choices, "--devices", DeviceChoice::to_string)?;
    let threads = no_duplicates(&settings.cpu_threads, "--cpu-threads", usize::to_string)?;

    let wants_cpu = choices.is_empty()
        || choices.contains(&DeviceChoice::Cpu)
        || choices.contains(&DeviceChoice::All);
    let mut notes = Vec::new();
    let mut devices: Vec<DeviceSpec> = Vec::new();
    if wants_cpu {
        let usable = machine.usable_cpus();
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

    let companion = machine.companion.clone();
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
        machine.gpus().clone()
    } else {
        GpuSection::default()
    };
    let visible = machine.cuda_visible_devices.clone();
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

/// `values` in order, or a usage error naming the first value `flag` lists twice.
pub fn no_duplicates<T: Clone + PartialEq>(
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
