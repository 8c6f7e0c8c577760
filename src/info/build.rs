//! This build of hwbench: version, target, and whether it can train on CUDA GPUs.

use serde::{Deserialize, Serialize};

use super::gpu::GpuSection;
use crate::companion::CompanionStatus;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct BuildInfo {
    pub hwbench_version: String,
    /// Rust target triple this binary was built for.
    pub target: String,
    /// Whether `train-compare` can use CUDA GPUs with this install (the `hwbench-cuda` companion).
    pub cuda_companion: CompanionStatus,
    /// GPUs on this machine the companion was not built for (by compute capability).
    pub gpus_not_supported: Vec<String>,
}

impl BuildInfo {
    /// This build, with the companion as the machine's probe found it.
    pub fn current(gpu: &GpuSection, cuda_companion: &CompanionStatus) -> Self {
        let cuda_companion = cuda_companion.clone();
        let gpus_not_supported = gpu
            .devices
            .iter()
            .filter_map(|d| {
                let cc = d.compute_capability.as_deref()?;
                (!cuda_companion.supports_compute_capability(cc)).then(|| {
                    format!(
                        "GPU {} ({}, compute capability {cc})",
                        d.index,
                        d.name.as_deref().unwrap_or("unknown")
                    )
                })
            })
            .collect();
        Self {
            hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
            target: env!("HWBENCH_TARGET").to_string(),
            cuda_companion,
            gpus_not_supported,
        }
    }
}
