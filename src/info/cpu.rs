//! The CPU: identity, topology, the CPUs this process may use, frequencies, caches, ISA features.
//!
//! Linux sources: /proc/cpuinfo, /sys/devices/system/cpu, the process's affinity mask and its
//! cgroup CPU quota. Parsing is kept apart from reading so tests can feed recorded text.

use std::collections::BTreeSet;
use std::fs;

use serde::{Deserialize, Serialize};

use super::{Root, Unavailable, keep, uarch};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CpuReport {
    /// Marketing name, e.g. "Intel(R) Xeon(R) Platinum 8480+".
    pub model_name: Option<String>,
    /// "GenuineIntel", "AuthenticAMD", or on ARM the implementer ("Arm", "NVIDIA", …).
    pub vendor: Option<String>,
    /// Instruction-set architecture of this build's target, e.g. "x86_64", "aarch64".
    pub architecture: String,
    /// Microarchitecture or generation, e.g. "Sapphire Rapids", "Zen 4 (Genoa)", "Neoverse V2".
    pub microarchitecture: Option<String>,
    /// x86: family, model, stepping as /proc/cpuinfo prints them; ARM: implementer, part, variant.
    pub signature: Option<String>,
    pub sockets: Option<usize>,
    pub physical_cores: Option<usize>,
    /// Logical CPUs online on the host (hardware threads).
    pub logical_cpus: Option<usize>,
    /// Simultaneous multithreading (Hyper-Threading) on: more logical CPUs than cores.
    pub smt_enabled: Option<bool>,
    /// CPUs this process may actually use: the smaller of its affinity mask and its cgroup quota.
    pub usable_cpus: Option<usize>,
    /// CPUs in this process's affinity mask (taskset, cpusets).
    pub affinity_cpus: Option<usize>,
    /// Which CPUs those are, e.g. "0-15,32-47".
    #[serde(default)]
    pub affinity_list: Option<String>,
    /// cgroup CPU quota in CPUs (e.g. 2.5 for `cpu.max` = "250000 100000"); `null` = no quota.
    pub cgroup_cpu_quota: Option<f64>,
    pub base_mhz: Option<f64>,
    pub max_mhz: Option<f64>,
    /// Where cpufreq gives no maximum: the clock a core ran at, measured by hwbench (dependent
    /// additions, one per cycle, timed over a tenth of a millisecond; best of five), in MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_mhz: Option<f64>,
    /// The clock /proc/cpuinfo reports now ("cpu MHz"): in a virtual machine, usually the host's
    /// nominal clock.
    #[serde(default)]
    pub current_mhz: Option<f64>,
    /// The cpufreq governor ("performance", "powersave", "mixed: …"), where the kernel has one.
    #[serde(default)]
    pub governor: Option<String>,
    /// Theoretical FP32 throughput of the usable cores, GFLOP/s, where the microarchitecture's
    /// FMA width and a clock are known; `fp32_peak_basis` says how it was reckoned.
    #[serde(default)]
    pub fp32_peak_gflops: Option<f64>,
    #[serde(default)]
    pub fp32_peak_basis: Option<String>,
    pub caches: Vec<CacheLevel>,
    /// The ML-relevant ISA features this CPU has, in a fixed order.
    pub features: Vec<String>,
    /// The ML-relevant ISA features looked for and not found.
    pub features_missing: Vec<String>,
    /// x86-64 micro-architecture level: "x86-64-v1" … "x86-64-v4".
    pub x86_64_level: Option<String>,
    /// Virtual machine, container or WSL, where detectable.
    pub virtualization: Vec<String>,
    pub unavailable: Unavailable,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CacheLevel {
    /// "L1d", "L1i", "L2", "L3".
    pub name: String,
    /// Size of one instance, in KiB.
    pub size_kib: u64,
    /// How many instances the host has (e.g. one L2 per core).
    pub instances: Option<usize>,
}

pub fn probe(root: &Root) -> CpuReport {
    let cpuinfo = root.read("/proc/cpuinfo").unwrap_or_default();
    let mut report = from_cpuinfo(&cpuinfo);
    let mut unavailable = std::mem::take(&mut report.unavailable);

    if report.logical_cpus.is_none() || report.physical_cores.is_none() {
        fill_topology_from_sysfs(root, &mut report);
    }
    if report.physical_cores.is_none() {
        unavailable.insert(
            "physical_cores".into(),
            "topology not exposed by the kernel".into(),
        );
    }

    let affinity = affinity(root);
    report.affinity_list = affinity.as_ref().ok().map(|list| cpu_list_text(list));
    report.affinity_cpus = keep(
        affinity.map(|list| list.len()),
        "affinity_cpus",
        &mut unavailable,
    );
    report.cgroup_cpu_quota = cgroup_cpu_quota(root);
    report.usable_cpus = usable(
        report.affinity_cpus.or(report.logical_cpus),
        report.cgroup_cpu_quota,
    );

    let (base, max) = frequencies(root, report.model_name.as_deref());
    report.base_mhz = keep(base, "base_mhz", &mut unavailable);
    report.max_mhz = keep(max, "max_mhz", &mut unavailable);
    // Only this machine's own cores can be timed: a recorded root has no clock to measure.
    if report.max_mhz.is_none() && root.is_real() {
        report.measured_mhz = super::clock::measured_mhz();
    }

    report.caches = caches(root, report.logical_cpus);
    if report.caches.is_empty() {
        unavailable.insert(
            "caches".into(),
            "/sys/devices/system/cpu/cpu0/cache not readable".into(),
        );
    }
    report.virtualization = virtualization(root, &cpuinfo);
    report.governor = governor(root);
    report.current_mhz = current_mhz(&cpuinfo);
    report.unavailable = unavailable;
    report
}

/// The cpufreq governor of every CPU that has one: one name, or "mixed: …".
fn governor(root: &Root) -> Option<String> {
    let online = root.read("/sys/devices/system/cpu/online")?;
    let mut seen: Vec<String> = Vec::new();
    for cpu in parse_cpu_list(online.trim()) {
        if let Some(g) = root.read(&format!(
            "/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"
        )) {
            let g = g.trim().to_string();
            if !seen.contains(&g) {
                seen.push(g);
            }
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("mixed: {}", seen.join(", "))),
    }
}

/// The clock /proc/cpuinfo reports ("cpu MHz"), the median over CPUs: in a virtual machine
/// usually the host's nominal clock.
fn current_mhz(cpuinfo: &str) -> Option<f64> {
    let mut values: Vec<f64> = cpuinfo
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split_once(':')?.1.trim().parse().ok())
        .filter(|v: &f64| *v > 0.0)
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Usable CPUs: the affinity count, capped by a cgroup quota rounded up (2.5 CPUs keep 3 busy).
fn usable(affinity: Option<usize>, quota: Option<f64>) -> Option<usize> {
    let affinity = affinity?;
    Some(match quota {
        Some(q) if q > 0.0 => affinity.min(q.ceil() as usize).max(1),
        _ => affinity,
    })
}

/// Everything /proc/cpuinfo alone tells. Pure, so tests can feed recorded files.
pub fn from_cpuinfo(text: &str) -> CpuReport {
    let blocks: Vec<Vec<(&str, &str)>> = text
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect::<Vec<_>>()
        })
        .filter(|fields| fields.iter().any(|(k, _)| *k == "processor"))
        .collect();
    let first = |key: &str| -> Option<&str> {
        blocks
            .iter()
            .flat_map(|b| b.iter())
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    };
    let number = |key: &str| -> Option<u32> { first(key).and_then(parse_u32) };

    let mut report = CpuReport {
        architecture: std::env::consts::ARCH.to_string(),
        ..CpuReport::default()
    };
    let mut unavailable = Unavailable::new();

    if !blocks.is_empty() {
        report.logical_cpus = Some(blocks.len());
    }

    // Sockets and cores: distinct `physical id` and (`physical id`, `core id`) pairs (x86).
    let pairs: BTreeSet<(&str, &str)> = blocks
        .iter()
        .filter_map(|b| {
            let get = |key: &str| b.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
            Some((get("physical id")?, get("core id")?))
        })
        .collect();
    if !pairs.is_empty() && pairs.len() <= blocks.len() {
        let sockets: BTreeSet<&str> = pairs.iter().map(|(socket, _)| *socket).collect();
        report.sockets = Some(sockets.len());
        report.physical_cores = Some(pairs.len());
        report.smt_enabled = Some(blocks.len() > pairs.len());
    }

    let flags: BTreeSet<&str> = first("flags")
        .or_else(|| first("Features"))
        .map(|f| f.split_whitespace().collect())
        .unwrap_or_default();

    if let Some(vendor) = first("vendor_id") {
        // x86
        report.vendor = Some(vendor.to_string());
        report.model_name = first("model name").map(str::to_string);
        let (family, model, stepping) = (number("cpu family"), number("model"), number("stepping"));
        if let (Some(family), Some(model)) = (family, model) {
            report.signature = Some(format!(
                "family {family} model {model} stepping {}",
                stepping.map_or("?".to_string(), |s| s.to_string())
            ));
            report.microarchitecture =
                uarch::x86_with_stepping(vendor, family, model, stepping.unwrap_or(0))
                    .map(str::to_string);
        }
        report.x86_64_level = Some(x86_64_level(&flags).to_string());
    } else if let Some(implementer) = number("CPU implementer") {
        // ARM
        let part = number("CPU part");
        report.vendor = Some(arm_implementer(implementer).to_string());
        report.signature = Some(format!(
            "implementer {implementer:#04x} part {} variant {}",
            part.map_or("?".to_string(), |p| format!("{p:#05x}")),
            first("CPU variant").unwrap_or("?")
        ));
        report.microarchitecture = part
            .and_then(|p| uarch::arm(implementer, p))
            .map(str::to_string);
        report.model_name = first("model name")
            .map(str::to_string)
            .or_else(|| report.microarchitecture.clone());
    }
    if report.model_name.is_none() {
        unavailable.insert("model_name".into(), "not in /proc/cpuinfo".into());
    }
    if report.microarchitecture.is_none() {
        unavailable.insert(
            "microarchitecture".into(),
            "CPU signature not in hwbench's table".into(),
        );
    }

    let wanted = if report.vendor.is_some() && first("vendor_id").is_some() {
        X86_ML_FEATURES
    } else {
        ARM_ML_FEATURES
    };
    for (flag, name) in wanted {
        let list = if flags.contains(flag) {
            &mut report.features
        } else {
            &mut report.features_missing
        };
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
    }
    report.unavailable = unavailable;
    report
}

/// (cpuinfo flag, name shown), in the order people scan for them.
const X86_ML_FEATURES: &[(&str, &str)] = &[
    ("sse4_2", "sse4.2"),
    ("avx", "avx"),
    ("avx2", "avx2"),
    ("fma", "fma"),
    ("f16c", "f16c"),
    ("avx_vnni", "avx-vnni"),
    ("avx512f", "avx512f"),
    ("avx512_vnni", "avx512_vnni"),
    ("avx512_bf16", "avx512_bf16"),
    ("avx512_fp16", "avx512_fp16"),
    ("amx_tile", "amx_tile"),
    ("amx_bf16", "amx_bf16"),
    ("amx_int8", "amx_int8"),
];

const ARM_ML_FEATURES: &[(&str, &str)] = &[
    ("asimd", "neon"),
    ("asimdhp", "fp16"),
    ("asimddp", "dotprod"),
    ("bf16", "bf16"),
    ("i8mm", "i8mm"),
    ("sve", "sve"),
    ("sve2", "sve2"),
    ("sme", "sme"),
];

/// The x86-64 psABI levels, from the flags each level adds.
fn x86_64_level(flags: &BTreeSet<&str>) -> &'static str {
    let has_all = |list: &[&str]| list.iter().all(|f| flags.contains(f));
    let v2 = has_all(&[
        "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3",
    ]);
    let v3 = v2
        && has_all(&[
            "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave",
        ]);
    let v4 = v3 && has_all(&["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]);
    match (v2, v3, v4) {
        (_, _, true) => "x86-64-v4",
        (_, true, _) => "x86-64-v3",
        (true, _, _) => "x86-64-v2",
        _ => "x86-64-v1",
    }
}

fn arm_implementer(code: u32) -> &'static str {
    match code {
        0x41 => "Arm",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x50 => "Applied Micro",
        0x51 => "Qualcomm",
        0x53 => "Samsung",
        0x61 => "Apple",
        0xc0 => "Ampere",
        _ => "unknown implementer",
    }
}

fn parse_u32(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Sockets and cores from sysfs, for kernels whose /proc/cpuinfo has no topology (ARM, some VMs).
fn fill_topology_from_sysfs(root: &Root, report: &mut CpuReport) {
    let Some(online) = root.read("/sys/devices/system/cpu/online") else {
        return;
    };
    let cpus = parse_cpu_list(online.trim());
    let mut cores = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    for cpu in &cpus {
        let read = |name: &str| {
            root.read(&format!("/sys/devices/system/cpu/cpu{cpu}/topology/{name}"))
                .map(|s| s.trim().to_string())
        };
        if let (Some(package), Some(core)) = (read("physical_package_id"), read("core_id")) {
            sockets.insert(package.clone());
            cores.insert((package, core));
        }
    }
    report.logical_cpus.get_or_insert(cpus.len());
    if !cores.is_empty() {
        report.sockets = Some(sockets.len());
        report.physical_cores = Some(cores.len());
        report.smt_enabled = Some(cpus.len() > cores.len());
    }
}

/// CPU numbers from this on are not CPUs (Linux allows at most 8192): a list naming them is read
/// no further than this, so that a hostile or broken list cannot allocate without bound.
pub const MAX_CPU: usize = 1 << 16;

/// "0-3,8,10-11" → [0, 1, 2, 3, 8, 10, 11]; numbers at or above [`MAX_CPU`], reversed ranges and
/// parts that are not numbers are left out.
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        if let (Ok(first), Ok(last)) = (first, last)
            && first <= last
            && first < MAX_CPU
        {
            cpus.extend(first..=last.min(MAX_CPU - 1));
        }
        if cpus.len() >= MAX_CPU {
            cpus.truncate(MAX_CPU);
            break;
        }
    }
    cpus
}

/// The CPUs this process may run on: sched_getaffinity on this machine (one system call), else
/// `Cpus_allowed_list` of /proc/self/status (the same list), else every online CPU.
fn affinity(root: &Root) -> Result<Vec<usize>, String> {
    if root.is_real()
        && let Some(cpus) = sched_affinity()
    {
        return Ok(cpus);
    }
    if let Some(status) = root.read("/proc/self/status")
        && let Some(list) = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
    {
        return Ok(parse_cpu_list(list.trim()));
    }
    root.read("/sys/devices/system/cpu/online")
        .map(|online| parse_cpu_list(online.trim()))
        .ok_or_else(|| "no Cpus_allowed_list in /proc/self/status".to_string())
}

/// This process's CPU affinity; `None` where sched_getaffinity fails (more than 1024 CPUs).
fn sched_affinity() -> Option<Vec<usize>> {
    // SAFETY: sched_getaffinity fills the zeroed set it is given, of the size it is told;
    // CPU_ISSET reads it within CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect();
        (!cpus.is_empty()).then_some(cpus)
    }
}

/// [0, 1, 2, 3, 8] → "0-3,8".
pub fn cpu_list_text(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// The tightest CPU quota on this process's cgroup path (v2 `cpu.max`, or v1 CFS quota).
fn cgroup_cpu_quota(root: &Root) -> Option<f64> {
    let cgroups = root.read("/proc/self/cgroup")?;
    let top = root.path("/sys/fs/cgroup");
    let mut tightest: Option<f64> = None;
    let mut consider = |quota: Option<f64>| {
        if let Some(q) = quota {
            tightest = Some(tightest.map_or(q, |t: f64| t.min(q)));
        }
    };
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.is_empty() {
            // cgroup v2: walk from this cgroup up to the root.
            let mut dir = top.join(path.trim_start_matches('/'));
            loop {
                consider(
                    fs::read_to_string(dir.join("cpu.max"))
                        .ok()
                        .and_then(|t| parse_cpu_max(&t)),
                );
                if !dir.pop() || !dir.starts_with(&top) {
                    break;
                }
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            for controller in ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"] {
                let dir = format!("{controller}{path}");
                let read = |name: &str| {
                    root.read(&format!("{dir}/{name}"))
                        .and_then(|t| t.trim().parse::<f64>().ok())
                };
                if let (Some(quota), Some(period)) =
                    (read("cpu.cfs_quota_us"), read("cpu.cfs_period_us"))
                {
                    consider((quota > 0.0 && period > 0.0).then(|| quota / period));
                    break;
                }
            }
        }
    }
    tightest
}

/// `cpu.max`: "max 100000" (no quota) or "250000 100000" (2.5 CPUs).
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    let quota = fields.next()?.parse::<f64>().ok()?;
    let period = fields.next()?.parse::<f64>().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// Base and maximum frequency: cpufreq where the kernel exposes it, else the "@ 2.50GHz" in the name.
fn frequencies(
    root: &Root,
    model_name: Option<&str>,
) -> (Result<f64, String>, Result<f64, String>) {
    let khz = |name: &str| {
        root.read(&format!("/sys/devices/system/cpu/cpu0/cpufreq/{name}"))
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(|k| k / 1000.0)
    };
    let no_cpufreq = "no cpufreq data from the kernel (common in virtual machines)";
    let base = khz("base_frequency")
        .or_else(|| model_name.and_then(mhz_in_name))
        .ok_or_else(|| no_cpufreq.to_string());
    let max = khz("cpuinfo_max_freq").ok_or_else(|| no_cpufreq.to_string());
    (base, max)
}

/// "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz" → 2400.
pub fn mhz_in_name(name: &str) -> Option<f64> {
    let at = name.rfind('@')?;
    let rest = name[at + 1..].trim();
    let ghz = rest.strip_suffix("GHz")?.trim().parse::<f64>().ok()?;
    Some((ghz * 1000.0).round())
}

/// Cache sizes of cpu0, and how many instances the host has (logical CPUs / CPUs sharing one).
fn caches(root: &Root, logical_cpus: Option<usize>) -> Vec<CacheLevel> {
    let mut levels = Vec::new();
    for index in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read = |name: &str| root.read(&format!("{dir}/{name}"));
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            break;
        };
        let suffix = match kind.trim() {
            "Data" => "d",
            "Instruction" => "i",
            _ => "",
        };
        let Some(size_kib) = parse_cache_size(size.trim()) else {
            continue;
        };
        let sharing = read("shared_cpu_list").map(|l| parse_cpu_list(l.trim()).len());
        let instances = match (logical_cpus, sharing) {
            (Some(total), Some(shared)) if shared > 0 => Some(total.div_ceil(shared)),
            _ => None,
        };
        levels.push(CacheLevel {
            name: format!("L{}{suffix}", level.trim()),
            size_kib,
            instances,
        });
    }
    levels
}

/// "32K" → 32, "1024K" → 1024, "32M" → 32768.
pub fn parse_cache_size(text: &str) -> Option<u64> {
    if let Some(k) = text.strip_suffix('K') {
        k.parse().ok()
    } else if let Some(m) = text.strip_suffix('M') {
        m.parse::<u64>().ok().map(|m| m * 1024)
    } else {
        text.parse::<u64>().ok().map(|b| b / 1024)
    }
}

/// Hints that this is not bare metal: hypervisor, container runtime, WSL.
fn virtualization(root: &Root, cpuinfo: &str) -> Vec<String> {
    let mut hints = Vec::new();
    // CPUID names the hypervisor on the machine itself; a recorded machine has its flags.
    let hypervisor = if root.is_real() {
        hypervisor()
    } else {
        let flagged = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|l| l.split_whitespace().any(|f| f == "hypervisor"));
        flagged.then(|| {
            root.read("/sys/hypervisor/type")
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "unknown hypervisor".to_string())
        })
    };
    if let Some(hypervisor) = hypervisor {
        hints.push(format!("virtual machine ({hypervisor})"));
    }
    if root.exists("/.dockerenv") {
        hints.push("container (Docker)".to_string());
    } else if root.exists("/run/.containerenv") {
        hints.push("container (Podman)".to_string());
    } else if root.is_real() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        hints.push("container (Kubernetes pod)".to_string());
    } else if let Some(cgroup) = root.read("/proc/1/cgroup")
        && ["docker", "kubepods", "containerd", "lxc"]
            .iter()
            .any(|k| cgroup.contains(k))
    {
        hints.push("container".to_string());
    }
    if root
        .read("/proc/sys/kernel/osrelease")
        .is_some_and(|r| r.to_lowercase().contains("microsoft"))
    {
        hints.push("WSL".to_string());
    }
    hints
}

/// The hypervisor's own name from CPUID leaf 0x4000_0000, when the hypervisor bit is set.
#[cfg(target_arch = "x86_64")]
fn hypervisor() -> Option<String> {
    use std::arch::x86_64::__cpuid;
    let leaf1 = __cpuid(1);
    if leaf1.ecx & (1 << 31) == 0 {
        return None;
    }
    // Leaf 0x4000_0000 is reserved for hypervisors once the hypervisor bit is set.
    let leaf = __cpuid(0x4000_0000);
    let bytes: Vec<u8> = [leaf.ebx, leaf.ecx, leaf.edx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    let id = String::from_utf8_lossy(&bytes)
        .trim_matches('\0')
        .to_string();
    Some(
        match id.as_str() {
            "KVMKVMKVM" => "KVM",
            "Microsoft Hv" => "Hyper-V",
            "VMwareVMware" => "VMware",
            "XenVMMXenVMM" => "Xen",
            "VBoxVBoxVBox" => "VirtualBox",
            "TCGTCGTCGTCG" => "QEMU TCG",
            "ACRNACRNACRN" => "ACRN",
            " lrpepyh  vr" => "Parallels",
            "" => "unknown hypervisor",
            other => other,
        }
        .to_string(),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn hypervisor() -> Option<String> {
    fs::read_to_string("/sys/hypervisor/type")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}
