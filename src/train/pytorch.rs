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

use super::compare::PlannedDevice;
use super::worker::{QuickRunError, WorkerCommand, last_line, run_with_timeout};
use super::{DeviceSpec, Framework};

/// The PyTorch worker.
pub const SCRIPT: &str = include_str!("pytorch_worker.py");

/// The least time given to Python to answer: importing torch for the first time can take a
/// while on a cold disk.
const IMPORT_TORCH: Duration = Duration::from_secs(120);

/// Prints torch's version and how many CUDA devices it can use, as JSON.
const PROBE: &str = "import json, torch; print(json.dumps({'version': torch.__version__, \
    'cuda_devices': torch.cuda.device_count() if torch.cuda.is_available() else 0}))";

/// What the probe found.
#[derive(Debug, serde::Deserialize)]
struct Torch {
    version: String,
    cuda_devices: usize,
}

/// The PyTorch columns for a plan whose candle columns train on `devices`: one on the CPU at the
/// most threads any candle column uses, one per CUDA device. When PyTorch cannot be used, no
/// columns and one line saying why.
pub fn columns(
    devices: &[DeviceSpec],
    python: &Path,
    timeout: Duration,
) -> Result<Vec<PlannedDevice>, String> {
    let timeout = timeout.max(IMPORT_TORCH);
    let torch = probe(python, timeout).map_err(|why| format!("No PyTorch columns: {why}."))?;
    let cpu_threads = devices
        .iter()
        .filter_map(|d| match d {
            DeviceSpec::Cpu { threads } => Some(*threads),
            DeviceSpec::Cuda { .. } => None,
        })
        .max();
    let mut columns: Vec<PlannedDevice> = cpu_threads
        .map(|threads| DeviceSpec::Cpu { threads })
        .into_iter()
        .chain(
            devices
                .iter()
                .copied()
                .filter(|d| matches!(d, DeviceSpec::Cuda { .. })),
        )
        .map(|device| PlannedDevice {
            device,
            framework: Framework::Pytorch,
            worker: Ok(worker(python, device, timeout)),
        })
        .collect();
    for column in &mut columns {
        if let DeviceSpec::Cuda { ordinal } = column.device
            && ordinal >= torch.cuda_devices
        {
            column.worker = Err(match torch.cuda_devices {
                0 => format!(
                    "PyTorch {} cannot use CUDA here (torch.cuda.is_available() is False)",
                    torch.version
                ),
                n => format!(
                    "PyTorch {} sees {n} CUDA device(s), not cuda:{ordinal}",
                    torch.version
                ),
            });
        }
    }
    Ok(columns)
}

fn worker(python: &Path, device: DeviceSpec, timeout: Duration) -> WorkerCommand {
    let mut env = vec![(
        "HWBENCH_VERSION".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )];
    if let DeviceSpec::Cpu { threads } = device {
        env.push(("OMP_NUM_THREADS".to_string(), threads.to_string()));
    }
    WorkerCommand {
        program: python.to_path_buf(),
        args: vec!["-I".to_string()],
        env,
        timeout,
        script: Some(SCRIPT),
    }
}

/// Runs `python -I -c "import torch …"`; the error says in a few words why torch is unusable.
fn probe(python: &Path, timeout: Duration) -> Result<Torch, String> {
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
