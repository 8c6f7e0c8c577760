//! `train-compare --with-pytorch`: the reference PyTorch loop, in columns next to candle's.
//!
//! The loop is a Python script shipped inside hwbench ([`SCRIPT`]) that speaks the same worker
//! protocol as hwbench's own workers, so its runs are timed, summarised and judged by the same
//! code. Python always starts isolated (`-I`: no environment variables, no user site-packages, no
//! current or script folder on `sys.path`), so a stray `torch.py` where hwbench is run cannot
//! stand in for PyTorch.

use std::path::Path;
use std::time::Duration;

use super::device::DeviceSpec;
use crate::process::{PythonFailure, ask_python, program_name};

/// The PyTorch worker.
pub const SCRIPT: &str = include_str!("pytorch_worker.py");

/// Prints torch's version and how many CUDA devices it can use, as JSON.
const PROBE: &str = "import json, torch; print(json.dumps({'version': torch.__version__, \
    'cuda_devices': torch.cuda.device_count() if torch.cuda.is_available() else 0}))";

/// What the probe found.
#[derive(Debug, serde::Deserialize)]
pub struct Torch {
    pub version: String,
    pub cuda_devices: usize,
}

impl Torch {
    /// Why this PyTorch cannot train on `device`, if it cannot.
    pub fn can_train_on(&self, device: DeviceSpec) -> Result<(), String> {
        match device {
            DeviceSpec::Cpu { .. } => Ok(()),
            DeviceSpec::Cuda { ordinal } if ordinal < self.cuda_devices => Ok(()),
            DeviceSpec::Cuda { ordinal } => Err(match self.cuda_devices {
                0 => format!(
                    "PyTorch {} cannot use CUDA here (torch.cuda.is_available() is False)",
                    self.version
                ),
                n => format!(
                    "PyTorch {} sees {n} CUDA device(s), not cuda:{ordinal}",
                    self.version
                ),
            }),
        }
    }
}

/// The devices of the PyTorch columns, for candle columns on `devices`: the CPU at the most
/// threads any candle column uses, and every accelerator.
pub fn devices(devices: &[DeviceSpec]) -> Vec<DeviceSpec> {
    let cpu_threads = devices
        .iter()
        .filter_map(|d| match d {
            DeviceSpec::Cpu { threads } => Some(*threads),
            _ => None,
        })
        .max();
    cpu_threads
        .map(|threads| DeviceSpec::Cpu { threads })
        .into_iter()
        .chain(devices.iter().copied().filter(|d| d.is_accelerator()))
        .collect()
}

/// Runs `python -I -c "import torch …"` (for at most `timeout`, as long as a worker may stay
/// silent: importing torch from a cold disk takes a while); the error says in a few words why
/// torch is unusable.
pub fn probe(python: &Path, timeout: Duration) -> Result<Torch, String> {
    let name = program_name(python);
    ask_python(python, PROBE, timeout).map_err(|failure| match failure {
        PythonFailure::NotFound => {
            format!("{name} not found (name a Python with torch in --python or HWBENCH_PYTHON)")
        }
        PythonFailure::Spawn(e) => format!("cannot start {name}: {e}"),
        PythonFailure::Stopped => "interrupted while importing torch".to_string(),
        PythonFailure::TimedOut => format!(
            "`{name} -c \"import torch\"` did not finish in {} s",
            timeout.as_secs()
        ),
        PythonFailure::Failed(why) => format!(
            "{name} cannot import torch ({why}); install PyTorch there, or name another Python in --python or HWBENCH_PYTHON"
        ),
        PythonFailure::Unexpected(line) => {
            format!("{name} answered the torch probe with something unexpected: {line}")
        }
    })
}
