//! Memory and operating system, through sysinfo (memory figures only: no process or CPU sampling).

use serde::{Deserialize, Serialize};
use sysinfo::System;

use super::{Unavailable, keep};

const MIB: u64 = 1024 * 1024;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryReport {
    pub total_mib: Option<u64>,
    pub available_mib: Option<u64>,
    pub swap_total_mib: Option<u64>,
    pub swap_free_mib: Option<u64>,
    /// The cgroup memory limit on this process, when it is below the host's memory.
    pub cgroup_limit_mib: Option<u64>,
    pub unavailable: Unavailable,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OsReport {
    /// Distribution or OS name, e.g. "Ubuntu".
    pub name: Option<String>,
    pub version: Option<String>,
    /// Name and version as the OS describes itself, e.g. "Linux (Ubuntu 24.04)".
    pub long_name: Option<String>,
    pub kernel: Option<String>,
    /// Redacted unless `--no-redact`.
    pub hostname: Option<String>,
    pub unavailable: Unavailable,
}

pub fn probe_memory() -> MemoryReport {
    let mut system = System::new();
    system.refresh_memory();
    let mut unavailable = Unavailable::new();
    let nonzero = |bytes: u64| {
        if bytes == 0 {
            Err("not reported by the OS".to_string())
        } else {
            Ok(bytes / MIB)
        }
    };
    let total = system.total_memory();
    let cgroup_limit = if total == 0 {
        None
    } else {
        system
            .cgroup_limits()
            .map(|limits| limits.total_memory)
            .filter(|&limit| limit < total)
            .map(|limit| limit / MIB)
    };
    MemoryReport {
        total_mib: keep(nonzero(total), "total_mib", &mut unavailable),
        available_mib: keep(
            nonzero(system.available_memory()),
            "available_mib",
            &mut unavailable,
        ),
        swap_total_mib: Some(system.total_swap() / MIB),
        swap_free_mib: Some(system.free_swap() / MIB),
        cgroup_limit_mib: cgroup_limit,
        unavailable,
    }
}

pub fn probe_os() -> OsReport {
    let mut unavailable = Unavailable::new();
    let known = |value: Option<String>| value.ok_or_else(|| "not reported by the OS".to_string());
    OsReport {
        name: keep(known(System::name()), "name", &mut unavailable),
        version: keep(known(System::os_version()), "version", &mut unavailable),
        long_name: keep(
            known(System::long_os_version()),
            "long_name",
            &mut unavailable,
        ),
        kernel: keep(known(System::kernel_version()), "kernel", &mut unavailable),
        hostname: keep(known(System::host_name()), "hostname", &mut unavailable),
        unavailable,
    }
}
