//! The `hwbench-cuda` companion: where it is, and what it was built for (its `describe` answer,
//! which names the worker protocol it speaks: `engine::protocol::PROTOCOL`).
//!
//! The companion links CUDA, so it cannot even start where the NVIDIA driver is missing; `hwbench`
//! never links CUDA and only ever talks to it as another process. `info` asks it to describe
//! itself; `train-compare` and `scale` start it as the worker of CUDA columns.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::protocol::PROTOCOL;
use crate::process::{QuickRunError, last_line, run_with_timeout, without_path};
use crate::redact::outside_line;

/// The companion's file name.
pub const EXECUTABLE: &str = "hwbench-cuda";
/// Environment variable naming the companion executable.
pub const ENV: &str = "HWBENCH_CUDA";

/// What `hwbench-cuda describe` prints: the build's CUDA version and target GPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompanionBuild {
    pub protocol: u32,
    pub hwbench_version: String,
    /// CUDA toolkit version the kernels were compiled with, e.g. "13.0".
    pub cuda_version: String,
    /// Compute capability the kernels were compiled for, e.g. "8.0".
    pub compute_capability: String,
    /// True when kernels are PTX, which the driver compiles for any newer GPU on first use.
    pub ptx: bool,
    /// The CUDA libraries the companion loaded, with their versions (absent from companions
    /// before protocol 2).
    #[serde(default)]
    pub libraries: Vec<CudaLibrary>,
}

/// One CUDA library a process has loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CudaLibrary {
    /// Its file name, e.g. "libcublas.so.13" (never the folder: it can name a user).
    pub file: String,
    /// What the library says its version is, e.g. "13.1.0".
    pub version: Option<String>,
    /// True when it is the copy installed beside the companion (`lib/`), false when the machine's.
    pub bundled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompanionStatus {
    /// True when the companion was found and started.
    pub available: bool,
    /// How it was found: "next to hwbench", "$HWBENCH_CUDA", "--cuda-companion".
    pub found: Option<String>,
    /// One line for people: why it is missing or cannot start, or what it is.
    pub detail: String,
    pub build: Option<CompanionBuild>,
}

impl CompanionStatus {
    /// Whether a GPU of compute capability `cc` ("9.0") can run this companion's kernels.
    pub fn supports_compute_capability(&self, cc: &str) -> bool {
        let Some(build) = &self.build else {
            return true; // nothing to flag: without a companion no GPU trains at all
        };
        let (Some(gpu), Some(built)) = (parse_cc(cc), parse_cc(&build.compute_capability)) else {
            return true;
        };
        if build.ptx {
            gpu >= built
        } else {
            gpu.0 == built.0 && gpu >= built
        }
    }
}

fn parse_cc(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((
        major.parse().ok()?,
        minor.trim_end_matches('a').parse().ok()?,
    ))
}

/// Where the companion is: `explicit`, else `$HWBENCH_CUDA`, else next to this executable.
pub fn locate(explicit: Option<&Path>) -> Result<(PathBuf, &'static str), String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok((path.to_path_buf(), "--cuda-companion"))
        } else {
            Err(format!(
                "--cuda-companion {} does not exist",
                path.display()
            ))
        };
    }
    if let Some(path) = std::env::var_os(ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok((path, "$HWBENCH_CUDA"))
        } else {
            Err(format!(
                "${ENV} names {}, which does not exist",
                path.display()
            ))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(EXECUTABLE)))
        .filter(|path| path.is_file());
    beside.map(|path| (path, "next to hwbench")).ok_or_else(|| {
        format!("this install has no CUDA support: no {EXECUTABLE} next to hwbench (see the README's CUDA section)")
    })
}

/// `HWBENCH_CUDA_LIBS=system`: the companion loads the machine's CUDA 13 libraries before the ones
/// installed beside it.
pub const LIBS_ENV: &str = "HWBENCH_CUDA_LIBS";

/// Where CUDA toolkits put their libraries.
const SYSTEM_CUDA: &str = "/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib";

/// The environment the companion starts with. Its own search order (RUNPATH) is: `lib/` beside
/// it, its folder, then the toolkit's folders; `LD_LIBRARY_PATH` goes before all of them, so with
/// `HWBENCH_CUDA_LIBS=system` hwbench puts the toolkit's folders there.
pub fn environment() -> Vec<(String, String)> {
    if std::env::var(LIBS_ENV).is_ok_and(|v| v == "system") {
        let path = match std::env::var("LD_LIBRARY_PATH") {
            Ok(old) if !old.is_empty() => format!("{SYSTEM_CUDA}:{old}"),
            _ => SYSTEM_CUDA.to_string(),
        };
        vec![("LD_LIBRARY_PATH".to_string(), path)]
    } else {
        Vec::new()
    }
}

/// What to do about a line in which the dynamic loader says a library is missing, in one line;
/// `None` when the line says something else.
pub fn missing_library(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("error while loading shared libraries: ")?;
    let library = rest.split(':').next()?.trim();
    Some(if library.starts_with("libcuda.so") {
        format!("{library} not found (no NVIDIA driver on this machine)")
    } else {
        format!(
            "{library} is missing: install with scripts/build-cuda.sh --install DIR, which puts CUDA's libraries beside {EXECUTABLE}, or put CUDA 13's lib folder on LD_LIBRARY_PATH"
        )
    })
}

/// Asks the companion [`locate`] found to describe itself (a short-lived process).
pub fn status(located: &Result<(PathBuf, &'static str), String>) -> CompanionStatus {
    let (path, found) = match located {
        Ok((path, found)) => (path, *found),
        Err(detail) => {
            return CompanionStatus {
                available: false,
                found: None,
                detail: detail.clone(),
                build: None,
            };
        }
    };
    let unavailable = |detail: String| CompanionStatus {
        available: false,
        found: Some(found.to_string()),
        detail,
        build: None,
    };
    match describe(path) {
        Ok(build) if build.protocol != PROTOCOL => unavailable(format!(
            "{EXECUTABLE} speaks protocol {}, hwbench speaks {}: install matching versions",
            build.protocol, PROTOCOL
        )),
        Ok(build) => CompanionStatus {
            available: true,
            found: Some(found.to_string()),
            detail: format!(
                "CUDA {}, kernels for compute capability {}{}",
                build.cuda_version,
                build.compute_capability,
                if build.ptx { " and newer (PTX)" } else { "" }
            ),
            build: Some(build),
        },
        Err(e) => unavailable(e),
    }
}

fn describe(path: &Path) -> Result<CompanionBuild, String> {
    // `info` is a readiness probe: a companion that hangs may not hold it up for long. Loading
    // CUDA's libraries takes a second or two on a cold machine.
    let timeout = Duration::from_secs(5);
    let output = run_with_timeout(
        Command::new(path).arg("describe").envs(environment()),
        timeout,
    )
    .map_err(|e| match e {
        QuickRunError::Spawn(e) => format!("{EXECUTABLE} cannot start: {e}"),
        QuickRunError::Stopped(_) => format!("{EXECUTABLE} describe was interrupted"),
        QuickRunError::TimedOut => format!(
            "{EXECUTABLE} describe did not answer within {} s",
            timeout.as_secs()
        ),
    })?;
    if !output.status.success() {
        let said = last_line(&String::from_utf8_lossy(&output.stderr)).unwrap_or_default();
        let said = outside_line(&without_path(&said, path), 300);
        return Err(match missing_library(&said) {
            Some(advice) => format!("{EXECUTABLE} cannot start: {advice}"),
            None if said.is_empty() => format!("{EXECUTABLE} cannot start ({})", output.status),
            None => format!("{EXECUTABLE} cannot start: {said}"),
        });
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{EXECUTABLE} describe answered something unreadable: {e}"))
}

/// What `hwbench-cuda describe` prints, from what this build was compiled with.
pub fn this_build() -> CompanionBuild {
    CompanionBuild {
        protocol: PROTOCOL,
        hwbench_version: env!("CARGO_PKG_VERSION").to_string(),
        cuda_version: option_env!("HWBENCH_CUDA_VERSION")
            .unwrap_or("none")
            .to_string(),
        compute_capability: option_env!("HWBENCH_CUDA_COMPUTE_CAP")
            .unwrap_or("none")
            .to_string(),
        ptx: option_env!("HWBENCH_CUDA_PTX").is_some(),
        libraries: loaded_cuda_libraries(),
    }
}

/// The CUDA libraries this process has loaded (from /proc/self/maps), with the version each one
/// reports through its own API; none of these calls needs a GPU.
pub fn loaded_cuda_libraries() -> Vec<CudaLibrary> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut paths: Vec<&str> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or_default();
            [
                "libcudart.so",
                "libcublas.so",
                "libcublasLt.so",
                "libcurand.so",
                "libnvrtc.so",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        })
        .collect();
    paths.sort_unstable();
    paths.dedup();
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("lib")));
    paths
        .into_iter()
        .map(|path| {
            let path = Path::new(path);
            CudaLibrary {
                file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                version: library_version(path),
                bundled: beside.as_deref().is_some_and(|b| path.parent() == Some(b)),
            }
        })
        .collect()
}

/// The version a loaded CUDA library reports through its own API.
fn library_version(path: &Path) -> Option<String> {
    type GetInt = unsafe extern "C" fn(*mut i32) -> i32;
    type GetProperty = unsafe extern "C" fn(i32, *mut i32) -> i32;
    type GetTwo = unsafe extern "C" fn(*mut i32, *mut i32) -> i32;
    type GetSize = unsafe extern "C" fn() -> usize;
    let name = path.file_name()?.to_string_lossy().into_owned();
    // SAFETY: the library is already loaded in this process (opening it takes a reference); the
    // functions below are part of each library's stable C API and only report a number.
    unsafe {
        let library = libloading::Library::new(path).ok()?;
        if name.starts_with("libcudart") {
            let get: libloading::Symbol<GetInt> = library.get(b"cudaRuntimeGetVersion\0").ok()?;
            let mut v = 0;
            (get(&mut v) == 0).then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
        } else if name.starts_with("libcublasLt") {
            let get: libloading::Symbol<GetSize> = library.get(b"cublasLtGetVersion\0").ok()?;
            let v = get();
            Some(format!("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100))
        } else if name.starts_with("libcublas") {
            let get: libloading::Symbol<GetProperty> = library.get(b"cublasGetProperty\0").ok()?;
            let mut parts = [0; 3];
            for (kind, part) in parts.iter_mut().enumerate() {
                if get(kind as i32, part) != 0 {
                    return None;
                }
            }
            Some(format!("{}.{}.{}", parts[0], parts[1], parts[2]))
        } else if name.starts_with("libcurand") {
            let get: libloading::Symbol<GetInt> = library.get(b"curandGetVersion\0").ok()?;
            let mut v = 0;
            (get(&mut v) == 0).then(|| format!("{}.{}.{}", v / 1000, (v % 1000) / 100, v % 100))
        } else if name.starts_with("libnvrtc") {
            let get: libloading::Symbol<GetTwo> = library.get(b"nvrtcVersion\0").ok()?;
            let (mut major, mut minor) = (0, 0);
            (get(&mut major, &mut minor) == 0).then(|| format!("{major}.{minor}"))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named_with_the_fix() {
        let advice = missing_library(
            "hwbench-cuda: error while loading shared libraries: libcublas.so.13: cannot open shared object file: No such file or directory",
        )
        .unwrap();
        assert!(
            advice.starts_with(
                "libcublas.so.13 is missing: install with scripts/build-cuda.sh --install DIR"
            ),
            "{advice}"
        );
        let driver = missing_library(
            "error while loading shared libraries: libcuda.so.1: cannot open shared object file",
        )
        .unwrap();
        assert!(driver.contains("no NVIDIA driver"), "{driver}");
        assert_eq!(missing_library("Segmentation fault"), None);
    }
}
