//! The machine a command runs on, probed once and handed to everything that needs it: planning
//! (which columns exist), `scale` (the CPU's FP32 peak), `info` and `report` (what the machine
//! is). Built from the user's settings (`--cuda-companion`) and the test seams, which are read
//! here and nowhere else: `HWBENCH_ROOT`, `HWBENCH_GPU_FIXTURE`, `CUDA_VISIBLE_DEVICES`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::cpu::{self, CpuReport};
use super::gpu::GpuSection;
use super::{GpuSource, Root, peaks};
use crate::companion::{self, CompanionStatus};
use crate::redact::Redactor;

/// What this machine is, as far as a command needs to know. The GPUs and the companion's
/// `describe` cost a library load and a process start: each is asked the first time it is needed,
/// and then kept.
pub struct Machine {
    /// Where `/proc`, `/sys` and `/etc` are read from.
    pub root: Root,
    /// The CPU, with its theoretical peaks.
    pub cpu: CpuReport,
    /// The hostname, the secret every redacted report of this machine leaves out.
    pub hostname: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` as this process was started with it.
    pub cuda_visible_devices: Option<String>,
    /// Where the `hwbench-cuda` companion is and how it was found, or why there is none.
    pub companion: Result<(PathBuf, &'static str), String>,
    gpu_source: GpuSource,
    gpus: OnceLock<GpuSection>,
    companion_status: OnceLock<CompanionStatus>,
}

impl Machine {
    /// Reads the CPU now; the GPUs and the companion's self-description when first asked.
    /// `cuda_companion`: the user's `--cuda-companion`, else `$HWBENCH_CUDA`, else next to hwbench.
    pub fn probe(cuda_companion: Option<&Path>) -> Self {
        let root = Root::from_env();
        let mut cpu = cpu::probe(&root);
        peaks::fill_cpu(&mut cpu);
        Self {
            hostname: super::system::hostname(&root),
            root,
            cpu,
            cuda_visible_devices: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
            companion: companion::locate(cuda_companion),
            gpu_source: GpuSource::from_env(),
            gpus: OnceLock::new(),
            companion_status: OnceLock::new(),
        }
    }

    /// The NVIDIA GPUs (NVML, or the recorded fixture), with their theoretical peaks.
    pub fn gpus(&self) -> &GpuSection {
        self.gpus.get_or_init(|| {
            let mut gpus = self.gpu_source.probe();
            for device in &mut gpus.devices {
                peaks::fill_gpu(device);
            }
            gpus.pci_gpus = super::gpu::pci_gpus(&self.root);
            if let Some(on_bus) = &gpus.pci_gpus {
                super::gpu::fill_numa(&mut gpus.devices, on_bus, &self.root);
            }
            // Only where there are NVIDIA GPUs: reading the kernel log costs a read per record.
            if !gpus.devices.is_empty() || gpus.pci_gpus.as_ref().is_some_and(|g| !g.is_empty()) {
                gpus.xids = super::keep(
                    super::xid::from_kernel_log(&self.root),
                    "xids",
                    &mut gpus.unavailable,
                );
            }
            gpus
        })
    }

    /// The companion as `info` reports it: found where, built for what, or why it cannot start.
    pub fn companion_status(&self) -> &CompanionStatus {
        self.companion_status
            .get_or_init(|| companion::status(&self.companion))
    }

    /// A redactor that knows this machine's hostname.
    pub fn redactor(&self) -> Redactor {
        Redactor::for_hostname(self.hostname.as_deref())
    }

    /// That redactor without probing anything else, for commands that only read saved reports
    /// (`diff`, `fleet`).
    pub fn host_redactor() -> Redactor {
        Redactor::for_hostname(super::system::hostname(&Root::from_env()).as_deref())
    }

    /// CPUs this process may use (at least 1).
    pub fn usable_cpus(&self) -> usize {
        self.cpu.usable_cpus.unwrap_or(1).max(1)
    }
}
