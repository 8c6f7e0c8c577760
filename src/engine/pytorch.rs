//! `train-compare --with-pytorch`: the reference PyTorch loop, in columns next to candle's.
//!
//! The loop is a Python script shipped inside hwbench ([`SCRIPT`]) that speaks the same worker
//! protocol as hwbench's own workers, so its runs are timed, summarised and judged by the same
//! code. Python always starts isolated (`-I`: no environment variables, no user site-packages, no
//! current or script folder on `sys.path`), so a stray `torch.py` where hwbench is run cannot
//! stand in for PyTorch.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::device::DeviceSpec;
use crate::process::{QuickRunError, last_line, run_with_timeout};

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
    // Its file name only: a full path can carry a user name into a public report.
    let name = python
        .file_name()
        .map_or(python.display(), |n| Path::new(n).display());
    let output = run_with_timeout(Command::new(python).args(["-I", "-c", PROBE]), timeout)
        .map_err(|e| match e {
            QuickRunError::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{name} not found (name a Python with torch in --python or HWBENCH_PYTHON)")
            }
            QuickRunError::Spawn(e) => format!("cannot start {name}: {e}"),
            QuickRunError::Stopped(_) => "interrupted while importing torch".to_string(),
            QuickRunError::TimedOut => {
                format!(
                    "`{name} -c \"import torch\"` did not finish in {} s",
                    timeout.as_secs()
                )
            }
        })?;
    if !output.status.success() {
        let why = last_line(&String::from_utf8_lossy(&output.stderr))
            .unwrap_or_else(|| format!("{}", output.status));
        return Err(format!(
            "{name} cannot import torch ({why}); install PyTorch there, or name another Python in --python or HWBENCH_PYTHON"
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|_| format!("{name} answered the torch probe with something unexpected: {line}"))
}
