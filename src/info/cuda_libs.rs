//! What changes which GPUs a framework sees, and the CUDA libraries installed on the system.
//!
//! The CUDA runtime (libcudart) and cuDNN are found the way a framework would find them, by
//! dynamic loading; they are never linked and never required.

use serde::{Deserialize, Serialize};

use super::{Unavailable, keep};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CudaEnvironment {
    /// `CUDA_VISIBLE_DEVICES` as set (GPU UUIDs in it are redacted unless `--no-redact`).
    pub cuda_visible_devices: Option<String>,
    /// `CUDA_DEVICE_ORDER`: FASTEST_FIRST (CUDA's default) or PCI_BUS_ID (NVML's order).
    pub cuda_device_order: Option<String>,
    /// Version of the CUDA runtime library found by the dynamic loader, e.g. "12.8".
    pub cuda_runtime_version: Option<String>,
    /// The runtime library file that answered, e.g. "libcudart.so.12".
    pub cuda_runtime_library: Option<String>,
    /// Version of cuDNN found by the dynamic loader, e.g. "9.1.0".
    pub cudnn_version: Option<String>,
    pub cudnn_library: Option<String>,
    pub unavailable: Unavailable,
}

const CUDART: &[&str] = &[
    "libcudart.so",
    "libcudart.so.13",
    "libcudart.so.12",
    "libcudart.so.11.0",
];
const CUDNN: &[&str] = &["libcudnn.so", "libcudnn.so.9", "libcudnn.so.8"];

pub fn probe() -> CudaEnvironment {
    let mut unavailable = Unavailable::new();
    let env = |name: &str| std::env::var(name).ok();
    let runtime = cudart_version();
    let cudnn = cudnn_version();
    CudaEnvironment {
        cuda_visible_devices: env("CUDA_VISIBLE_DEVICES"),
        cuda_device_order: env("CUDA_DEVICE_ORDER"),
        cuda_runtime_version: keep(
            runtime.clone().map(|(v, _)| v),
            "cuda_runtime_version",
            &mut unavailable,
        ),
        cuda_runtime_library: runtime.ok().map(|(_, lib)| lib),
        cudnn_version: keep(
            cudnn.clone().map(|(v, _)| v),
            "cudnn_version",
            &mut unavailable,
        ),
        cudnn_library: cudnn.ok().map(|(_, lib)| lib),
        unavailable,
    }
}

/// The first library of `names` the dynamic loader can open.
fn open_first(names: &[&str]) -> Option<(libloading::Library, String)> {
    names
        .iter()
        .filter(|name| super::loader::may_find(name))
        .find_map(|name| {
            // SAFETY: CUDA's libraries run no code at load time that could conflict with hwbench.
            unsafe { libloading::Library::new(name) }
                .ok()
                .map(|lib| (lib, name.to_string()))
        })
}

fn cudart_version() -> Result<(String, String), String> {
    let (lib, name) = open_first(CUDART).ok_or("libcudart not found by the dynamic loader")?;
    // SAFETY: cudaRuntimeGetVersion(int*) is part of the stable CUDA runtime API; it does not
    // initialise a device.
    let version = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn(*mut i32) -> i32> = lib
            .get(b"cudaRuntimeGetVersion\0")
            .map_err(|e| e.to_string())?;
        let mut version = 0;
        if get(&mut version) != 0 {
            return Err(format!("{name}: cudaRuntimeGetVersion failed"));
        }
        version
    };
    Ok((
        format!("{}.{}", version / 1000, (version % 1000) / 10),
        name,
    ))
}

fn cudnn_version() -> Result<(String, String), String> {
    let (lib, name) = open_first(CUDNN).ok_or("libcudnn not found by the dynamic loader")?;
    // SAFETY: size_t cudnnGetVersion(void) is part of cuDNN's stable API.
    let version = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn() -> usize> =
            lib.get(b"cudnnGetVersion\0").map_err(|e| e.to_string())?;
        get()
    };
    Ok((cudnn_version_string(version), name))
}

/// cuDNN encodes its version as MAJOR*1000+MINOR*100+PATCH before 9 and MAJOR*10000+MINOR*100+PATCH
/// from 9 on.
pub fn cudnn_version_string(v: usize) -> String {
    if v >= 90000 {
        format!("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 1000, (v % 1000) / 100, v % 100)
    }
}
