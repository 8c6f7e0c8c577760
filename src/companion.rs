//! The `hwbench-cuda` companion: where it is, what it was built for, and the version of the worker
//! protocol every worker (hwbench's own, the companion, the PyTorch script) must speak.
//!
//! The companion links CUDA, so it cannot even start where the NVIDIA driver is missing; `hwbench`
//! never links CUDA and only ever talks to it as another process. `info` asks it to describe
//! itself; `train` starts it as the worker of CUDA columns.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::{QuickRunError, last_line, run_with_timeout};

/// The worker protocol's version (messages: `train::protocol`). Bumped whenever a message
/// changes shape; a worker that speaks another version is refused with one line.
pub const PROTOCOL: u32 = 2;

pub const EXECUTABLE: &str = "hwbench-cuda";
/// Environment variable naming the companion executable.
pub const ENV: &str = "HWBENCH_CUDA";

/// What `hwbench-cuda describe` prints: the build's CUDA version and target GPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompanionBuild {
    pub protocol: u32,
    pub hwbench_version: String,
    /// CUDA toolkit version the kernels were compiled with, e.g. "13.0".
    pub cuda_version: String,
    /// Compute capability the kernels were compiled for, e.g. "8.0".
    pub compute_capability: String,
    /// True when kernels are PTX, which the driver compiles for any newer GPU on first use.
    pub ptx: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// Finds the companion and asks it to describe itself (a short-lived process).
pub fn status(explicit: Option<&Path>) -> CompanionStatus {
    let (path, found) = match locate(explicit) {
        Ok(found) => found,
        Err(detail) => {
            return CompanionStatus {
                available: false,
                found: None,
                detail,
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
    match describe(&path) {
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
    let timeout = Duration::from_secs(20);
    let output =
        run_with_timeout(Command::new(path).arg("describe"), timeout).map_err(|e| match e {
            QuickRunError::Spawn(e) => format!("{EXECUTABLE} cannot start: {e}"),
            QuickRunError::Stopped(_) => format!("{EXECUTABLE} describe was interrupted"),
            QuickRunError::TimedOut => format!(
                "{EXECUTABLE} describe did not answer within {} s",
                timeout.as_secs()
            ),
        })?;
    if !output.status.success() {
        let said = last_line(&String::from_utf8_lossy(&output.stderr)).unwrap_or_default();
        return Err(if said.contains("libcuda.so") {
            format!(
                "{EXECUTABLE} cannot start: libcuda.so.1 not found (no NVIDIA driver on this machine)"
            )
        } else if said.is_empty() {
            format!("{EXECUTABLE} cannot start ({})", output.status)
        } else {
            format!("{EXECUTABLE} cannot start: {said}")
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
    }
}
