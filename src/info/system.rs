//! Memory (from /proc/meminfo and the cgroup limit) and the operating system (os-release, /proc).

use serde::{Deserialize, Serialize};
use sysinfo::System;

use super::{Root, Unavailable, keep};

const MIB: u64 = 1024 * 1024;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemoryReport {
    pub total_mib: Option<u64>,
    pub available_mib: Option<u64>,
    pub swap_total_mib: Option<u64>,
    pub swap_free_mib: Option<u64>,
    /// The cgroup memory limit on this process, when it is below the host's memory.
    pub cgroup_limit_mib: Option<u64>,
    pub unavailable: Unavailable,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
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

/// Memory from /proc/meminfo, and the cgroup memory limit on this process.
pub fn probe_memory(root: &Root) -> MemoryReport {
    let mut unavailable = Unavailable::new();
    let meminfo = root.read("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> Result<u64, String> {
        meminfo
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib / 1024)
            .ok_or_else(|| format!("no {name} in /proc/meminfo"))
    };
    let total = keep(field("MemTotal"), "total_mib", &mut unavailable);
    MemoryReport {
        total_mib: total,
        available_mib: keep(field("MemAvailable"), "available_mib", &mut unavailable),
        swap_total_mib: keep(field("SwapTotal"), "swap_total_mib", &mut unavailable),
        swap_free_mib: keep(field("SwapFree"), "swap_free_mib", &mut unavailable),
        cgroup_limit_mib: cgroup_memory_limit_mib(root)
            .filter(|&limit| total.is_some_and(|t| limit < t)),
        unavailable,
    }
}

/// The tightest memory limit on this process's cgroup path (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), in MiB.
fn cgroup_memory_limit_mib(root: &Root) -> Option<u64> {
    let cgroups = root.read("/proc/self/cgroup")?;
    let mut tightest: Option<u64> = None;
    let mut consider = |text: Option<String>| {
        if let Some(bytes) = text.and_then(|t| t.trim().parse::<u64>().ok()) {
            let mib = bytes / MIB;
            tightest = Some(tightest.map_or(mib, |t| t.min(mib)));
        }
    };
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.is_empty() {
            let mut dir = path.trim_end_matches('/').to_string();
            loop {
                consider(root.read(&format!("/sys/fs/cgroup{dir}/memory.max")));
                match dir.rfind('/') {
                    Some(cut) => dir.truncate(cut),
                    None => break,
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            consider(root.read(&format!(
                "/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
            )));
        }
    }
    tightest
}

/// The hostname: the kernel's (`/proc/sys/kernel/hostname` under a recorded root), trimmed.
pub fn hostname(root: &Root) -> Option<String> {
    let name = if root.is_real() {
        System::host_name()
    } else {
        root.read("/proc/sys/kernel/hostname")
    };
    name.map(|n| n.trim_end_matches('\n').to_string())
        .filter(|n| !n.trim().is_empty())
}

/// The OS from os-release (read once, from the root: a recorded root reports its own) and the
/// kernel from /proc, named the way sysinfo names them: "Debian GNU/Linux", "12",
/// "Linux (Debian GNU/Linux 12)".
pub fn probe_os(root: &Root) -> OsReport {
    let mut unavailable = Unavailable::new();
    let release = root
        .read("/etc/os-release")
        .or_else(|| root.read("/usr/lib/os-release"))
        .unwrap_or_default();
    let field = |key: &str| os_release_field(&release, key);
    let name = field("NAME");
    let version = field("VERSION_ID");
    let long_name = match (&name, &version) {
        (_, Some(version)) => format!("Linux ({} {version})", name.as_deref().unwrap_or("unknown")),
        (Some(name), None) => format!("Linux ({name})"),
        (None, None) => "Linux".to_string(),
    };
    let missing = |what: &str| format!("no {what} in /etc/os-release");
    let kernel = root
        .read("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    OsReport {
        name: keep(
            name.ok_or_else(|| missing("NAME")),
            "name",
            &mut unavailable,
        ),
        version: keep(
            version.ok_or_else(|| missing("VERSION_ID")),
            "version",
            &mut unavailable,
        ),
        long_name: Some(long_name),
        kernel: keep(
            kernel.ok_or_else(|| "no /proc/sys/kernel/osrelease".to_string()),
            "kernel",
            &mut unavailable,
        ),
        hostname: keep(
            hostname(root).ok_or_else(|| "not reported by the OS".to_string()),
            "hostname",
            &mut unavailable,
        ),
        unavailable,
    }
}

/// One `KEY=value` of os-release, its quotes removed; `None` when empty.
fn os_release_field(release: &str, key: &str) -> Option<String> {
    super::config_value(release, key)
        .filter(|value| !value.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::os_release_field;

    #[test]
    fn os_release_values_lose_their_quotes() {
        let release = "NAME=\"Debian GNU/Linux\"\nVERSION_ID='12'\nID=debian\nEMPTY=\n";
        assert_eq!(
            os_release_field(release, "NAME").as_deref(),
            Some("Debian GNU/Linux")
        );
        assert_eq!(
            os_release_field(release, "VERSION_ID").as_deref(),
            Some("12")
        );
        assert_eq!(os_release_field(release, "ID").as_deref(), Some("debian"));
        assert_eq!(os_release_field(release, "EMPTY"), None);
        assert_eq!(os_release_field(release, "VERSION"), None);
    }
}
