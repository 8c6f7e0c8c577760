//! What only a CUDA build can ask of a CUDA device; the same API answers `None` in a CPU build,
//! so callers need no `cfg`.

use candle_core::Device;

#[cfg(feature = "cuda")]
pub fn device_name(device: &Device) -> Option<String> {
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
pub fn device_name(_device: &Device) -> Option<String> {
    None
}

#[cfg(not(feature = "cuda"))]
pub fn memory_in_use_mib(_device: &Device) -> Option<f64> {
    None
}
