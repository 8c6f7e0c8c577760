//! A CUDA GPU as a training device: candle's CUDA backend, in the `hwbench-cuda` companion (which
//! links CUDA, so that `hwbench` itself starts on any machine).
//!
//! What only a CUDA build can ask of a device has the same API in a CPU build, where it answers
//! `None`, so callers need no `cfg`.

use std::path::PathBuf;

use candle_core::Device;

use crate::info::gpu::GpuSection;

/// What the CUDA memory figure is: this worker's own, as NVML counts it per process.
pub const MEMORY_KIND: &str = "GPU memory of this worker process (NVML), highest after any run";
/// When NVML cannot see the worker (a container's separate process IDs), the whole device's.
pub const DEVICE_MEMORY_KIND: &str =
    "GPU memory in use on the whole device (this worker's could not be read)";

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

/// How cuBLAS multiplies float32 matrices here: full FP32, as PyTorch does by default.
pub const MATMUL_PRECISION: &str = "FP32 (TF32 off, as PyTorch's default)";

/// Opens the GPU, with TF32 off for float32 matrix products (candle's default too; set here so
/// that no default elsewhere can change what the timings mean).
pub fn open(ordinal: usize) -> Result<Device, String> {
    if !candle_core::utils::cuda_is_available() {
        return Err("this executable was built without CUDA support".to_string());
    }
    candle_core::cuda::set_gemm_reduced_precision_f32(false);
    Device::new_cuda(ordinal).map_err(|e| format!("cannot open cuda:{ordinal}: {e}"))
}

/// How many CUDA devices a framework would see (see [`GpuSection::visible_count`]).
pub fn visible_count(gpus: &GpuSection, visible: Option<&str>) -> usize {
    crate::info::gpu::visible_count(gpus, visible)
}

/// The CUDA ordinals the default run trains on: all visible ones, or only cuda:0 when every
/// visible GPU is the same model (one column stands for them; a note says so). With GPUs of
/// several models every one runs: CUDA's order need not be NVML's, so a model's ordinal is not
/// known.
pub fn distinct_models(gpus: &GpuSection, visible: Option<&str>) -> (Vec<usize>, Option<String>) {
    let count = visible_count(gpus, visible);
    let names: Vec<Option<&str>> = gpus.devices.iter().map(|g| g.name.as_deref()).collect();
    let one_model =
        names.first().is_some_and(|first| first.is_some()) && names.iter().all(|n| *n == names[0]);
    if count < 2 || !one_model {
        return ((0..count).collect(), None);
    }
    let note = format!(
        "cuda:1{} {} the same model as cuda:0 ({}): one column stands for them; --devices all trains on each.",
        if count > 2 {
            format!(" to cuda:{}", count - 1)
        } else {
            String::new()
        },
        if count > 2 { "are" } else { "is" },
        names[0].unwrap_or("unknown")
    );
    (vec![0], Some(note))
}

/// Why `cuda:ordinal` does not exist here, when it does not: a usage error, said in one line.
pub fn missing(ordinal: usize, gpus: &GpuSection, visible: Option<&str>) -> Option<String> {
    let count = visible_count(gpus, visible);
    if ordinal < count {
        return None;
    }
    let there = match count {
        0 if !gpus.nvml_loaded => format!(
            "this machine has no CUDA GPU ({})",
            gpus.message.as_deref().unwrap_or("no NVIDIA driver")
        ),
        0 => "no CUDA GPU is visible here".to_string(),
        1 => "the only CUDA device here is cuda:0".to_string(),
        n => format!("the CUDA devices here are cuda:0 to cuda:{}", n - 1),
    };
    let hidden = match visible {
        Some(list) if count == 0 && !gpus.devices.is_empty() => {
            format!(" (CUDA_VISIBLE_DEVICES={list:?} hides every GPU)")
        }
        Some(list) if count < gpus.devices.len() => {
            format!(" (CUDA_VISIBLE_DEVICES={list:?} hides the others)")
        }
        _ => String::new(),
    };
    Some(format!("cuda:{ordinal} does not exist: {there}{hidden}"))
}

/// The program that trains on a CUDA device (the companion), or why it cannot be used.
pub fn worker_program(
    companion: &Result<(PathBuf, &'static str), String>,
) -> Result<PathBuf, String> {
    companion.clone().map(|(program, _)| program)
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

/// The device's UUID as NVML writes it ("GPU-8-4-4-4-12" in hex).
#[cfg(feature = "cuda")]
fn uuid(device: &Device) -> Option<String> {
    let bytes: Vec<u8> = device
        .as_cuda_device()
        .ok()?
        .cuda_stream()
        .context()
        .uuid()
        .ok()?
        .bytes
        .iter()
        .map(|&b| b as u8)
        .collect();
    let hex = |range: std::ops::Range<usize>| -> String {
        bytes[range].iter().map(|b| format!("{b:02x}")).collect()
    };
    Some(format!(
        "GPU-{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    ))
}

/// This worker's memory on the device (NVML's per-process figure), else the device's in use.
#[cfg(feature = "cuda")]
pub fn memory_mib(device: &Device) -> Option<(f64, &'static str)> {
    use nvml_wrapper::enums::device::UsedGpuMemory;
    const MIB: f64 = 1024.0 * 1024.0;
    static NVML: std::sync::OnceLock<Option<nvml_wrapper::Nvml>> = std::sync::OnceLock::new();
    let own = NVML
        .get_or_init(|| nvml_wrapper::Nvml::init().ok())
        .as_ref()
        .and_then(|nvml| {
            let gpu = nvml.device_by_uuid(uuid(device)?.as_str()).ok()?;
            let pid = std::process::id();
            gpu.running_compute_processes()
                .ok()?
                .into_iter()
                .find(|p| p.pid == pid)
                .and_then(|p| match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes as f64 / MIB),
                    UsedGpuMemory::Unavailable => None,
                })
        });
    if let Some(mib) = own {
        return Some((mib, MEMORY_KIND));
    }
    let (free, total) = memory_info(device)?;
    Some(((total - free) as f64 / MIB, DEVICE_MEMORY_KIND))
}

/// The device's free and total memory, in bytes, as the driver reports them.
#[cfg(feature = "cuda")]
fn memory_info(device: &Device) -> Option<(usize, usize)> {
    device
        .as_cuda_device()
        .ok()?
        .cuda_stream()
        .context()
        .mem_get_info()
        .ok()
}

/// Free memory on the device, as the driver reports it.
#[cfg(feature = "cuda")]
pub fn free_memory_mib(device: &Device) -> Option<f64> {
    let (free, _total) = memory_info(device)?;
    Some(free as f64 / (1024.0 * 1024.0))
}

/// The driver's compute cache, before the device is opened: whether the first epoch will compile
/// PTX (cold) or load what an earlier run compiled (warm).
pub fn kernel_cache() -> String {
    if std::env::var_os("CUDA_CACHE_DISABLE").is_some_and(|v| v == "1") {
        return "cold: CUDA_CACHE_DISABLE=1, every run compiles the kernels".to_string();
    }
    let (folder, shown) = match std::env::var_os("CUDA_CACHE_PATH") {
        Some(path) => (
            std::path::PathBuf::from(path),
            "$CUDA_CACHE_PATH".to_string(),
        ),
        None => match std::env::var_os("HOME") {
            Some(home) => (
                std::path::Path::new(&home).join(".nv/ComputeCache"),
                "~/.nv/ComputeCache".to_string(),
            ),
            None => return "unknown: no HOME, so no compute cache".to_string(),
        },
    };
    let bytes = folder_bytes(&folder, 4);
    if bytes == 0 {
        format!("cold: {shown} was empty, so the first epoch includes compiling the kernels")
    } else {
        format!(
            "warm: {shown} held {:.0} MiB of compiled kernels",
            bytes as f64 / (1024.0 * 1024.0)
        )
    }
}

/// Bytes of the files in `folder` and its subfolders, `depth` levels down.
fn folder_bytes(folder: &std::path::Path, depth: usize) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() && depth > 0 => folder_bytes(&entry.path(), depth - 1),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(not(feature = "cuda"))]
pub fn name(_device: &Device) -> Option<String> {
    None
}

#[cfg(not(feature = "cuda"))]
pub fn free_memory_mib(_device: &Device) -> Option<f64> {
    None
}

#[cfg(not(feature = "cuda"))]
pub fn memory_mib(_device: &Device) -> Option<(f64, &'static str)> {
    None
}
