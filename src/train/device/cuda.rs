//! A CUDA GPU as a training device: candle's CUDA backend, in the `hwbench-cuda` companion (which
//! links CUDA, so that `hwbench` itself starts on any machine).
//!
//! What only a CUDA build can ask of a device has the same API in a CPU build, where it answers
//! `None`, so callers need no `cfg`.

use std::path::PathBuf;

use candle_core::Device;

use crate::info::gpu::GpuSection;

pub const MEMORY_KIND: &str = "GPU memory in use (whole device)";

pub fn label(ordinal: usize) -> String {
    format!("cuda:{ordinal}")
}

/// "cuda" (ordinal 0) or "cuda:N".
pub fn parse(text: &str) -> Option<usize> {
    match text {
        "cuda" => Some(0),
        _ => text.strip_prefix("cuda:")?.parse().ok(),
    }
}

pub fn open(ordinal: usize) -> Result<Device, String> {
    if !candle_core::utils::cuda_is_available() {
        return Err("this executable was built without CUDA support".to_string());
    }
    Device::new_cuda(ordinal).map_err(|e| format!("cannot open cuda:{ordinal}: {e}"))
}

/// The CUDA ordinals a framework would see: the GPUs NVML reports, limited by
/// `CUDA_VISIBLE_DEVICES`.
pub fn visible_ordinals(gpus: &GpuSection) -> Vec<usize> {
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

/// The program that trains on `cuda:ordinal` (the companion), or why that device cannot be used.
pub fn worker_program(
    ordinal: usize,
    gpus: &GpuSection,
    companion: &Result<(PathBuf, &'static str), String>,
) -> Result<PathBuf, String> {
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
    Ok(program)
}

#[cfg(feature = "cuda")]
pub fn name(device: &Device) -> Option<String> {
    device
        .as_cuda_device()
        .ok()?
        .cuda_stream()
        .context()
        .name()
        .ok()
}

#[cfg(feature = "cuda")]
pub fn memory_in_use_mib(device: &Device) -> Option<f64> {
    let (free, total) = device
        .as_cuda_device()
        .ok()?
        .cuda_stream()
        .context()
        .mem_get_info()
        .ok()?;
    Some((total - free) as f64 / (1024.0 * 1024.0))
}

#[cfg(not(feature = "cuda"))]
pub fn name(_device: &Device) -> Option<String> {
    None
}

#[cfg(not(feature = "cuda"))]
pub fn memory_in_use_mib(_device: &Device) -> Option<f64> {
    None
}
