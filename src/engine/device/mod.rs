//! What a device kind is, one file per kind: how it is named on the command line and in reports,
//! how a worker opens it and prepares its process for it, what its memory figure means, and which
//! program trains on it.
//!
//! To add a kind (ROCm, Metal): a file like `cuda.rs`, a variant in [`DeviceSpec`] and in
//! [`DeviceChoice`], and its arm in each `match` below and in `plan::worker_command`; the compiler
//! lists every place, and nothing assumes that a device that is not the CPU is a CUDA GPU.

pub mod cpu;
pub mod cuda;

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use serde::{Deserialize, Serialize};

/// Where one column of the comparison trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DeviceSpec {
    /// The CPU, with candle limited to this many threads.
    Cpu { threads: usize },
    /// A CUDA GPU by CUDA ordinal.
    Cuda { ordinal: usize },
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Cpu { threads } => f.write_str(&cpu::label(threads)),
            Self::Cuda { ordinal } => f.write_str(&cuda::label(ordinal)),
        }
    }
}

impl DeviceSpec {
    /// A GPU (or any accelerator) rather than the host CPU: work is queued to it, and each
    /// operation pays a launch.
    pub fn is_accelerator(self) -> bool {
        match self {
            Self::Cpu { .. } => false,
            Self::Cuda { .. } => true,
        }
    }

    /// Sets up the worker process for this device, before any other thread exists.
    pub fn prepare_process(self) {
        match self {
            Self::Cpu { threads } => {
                cpu::limit_threads(threads);
                cpu::keep_freed_memory();
            }
            Self::Cuda { .. } => {}
        }
    }

    /// Opens the device in a worker, or says in one line why it cannot be used.
    pub fn open(self) -> Result<Device, String> {
        match self {
            Self::Cpu { .. } => Ok(Device::Cpu),
            Self::Cuda { ordinal } => cuda::open(ordinal),
        }
    }

    /// The CPU model or GPU name, as the worker sees it.
    pub fn name(self, device: &Device) -> Option<String> {
        match self {
            Self::Cpu { .. } => cpu::name(),
            Self::Cuda { .. } => cuda::name(device),
        }
    }

    /// The memory this worker uses on the device now, in MiB, and what that figure is; a worker
    /// asks after every run and keeps the highest.
    pub fn memory_mib(self, device: &Device) -> Option<(f64, &'static str)> {
        match self {
            Self::Cpu { .. } => cpu::peak_memory_mib().map(|mib| (mib, cpu::MEMORY_KIND)),
            Self::Cuda { .. } => cuda::memory_mib(device),
        }
    }

    /// Memory this worker could still allocate on the device, in MiB.
    pub fn free_memory_mib(self, device: &Device) -> Option<f64> {
        match self {
            Self::Cpu { .. } => cpu::free_memory_mib(),
            Self::Cuda { .. } => cuda::free_memory_mib(device),
        }
    }

    /// What the memory figure is when none could be read.
    pub fn memory_kind(self) -> &'static str {
        match self {
            Self::Cpu { .. } => cpu::MEMORY_KIND,
            Self::Cuda { .. } => cuda::MEMORY_KIND,
        }
    }

    /// Whether opening the device and its first epoch will compile kernels, said before it opens.
    pub fn kernel_cache(self) -> Option<String> {
        match self {
            Self::Cpu { .. } => None,
            Self::Cuda { .. } => Some(cuda::kernel_cache()),
        }
    }
}

/// A device as named on the command line: `cpu` (one column per thread count), `cuda`, `cuda:N`,
/// or `all` (the CPU and every visible GPU, identical ones included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Cuda(usize),
    All,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(ordinal) => f.write_str(&cuda::label(*ordinal)),
            Self::All => f.write_str("all"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text {
            "cpu" => return Ok(Self::Cpu),
            "all" => return Ok(Self::All),
            _ => {}
        }
        cuda::parse(text)
            .map(Self::Cuda)
            .ok_or_else(|| format!("unknown device '{text}': use cpu, cuda, cuda:N or all"))
    }
}
