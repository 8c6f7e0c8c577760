//! What on this machine will make training slow or wrong, said as findings: a stable id, a
//! severity, the subject, the values read, and one line on what to do.
//!
//! Every rule reads only the collected report, so recorded GPU sections and /proc and /sys files
//! (see `Root`) try each one. A rule whose data could not be read stays silent: a query NVML does
//! not support never raises a false alarm. The table in docs/findings.md lists every rule.

use serde::{Deserialize, Serialize};

use super::InfoReport;
use super::cpu::{CpuReport, parse_cpu_list};
use super::gpu::{GpuReport, pci_slot};
use crate::readable::gib;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing when reading timings.
    Note,
    /// Slows training or skews timings.
    Warning,
    /// Makes training fail or compute wrong results.
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    /// Stable across versions, e.g. "gpu.pcie-narrow".
    pub id: String,
    pub severity: Severity,
    /// What it is about: "GPU 0", "CPU", "memory", "environment", "GPUs", "NVIDIA driver".
    pub subject: String,
    /// What it is, in words.
    pub summary: String,
    /// The values read.
    pub evidence: String,
    /// What to do, in one line.
    pub advice: String,
}

/// Every rule: id, severity, what it checks (the docs' table is written from the same words).
pub const RULES: &[(&str, Severity, &str)] = &[
    (
        "gpu.driver-mismatch",
        Severity::Error,
        "NVML reports that the NVIDIA kernel module and user-space driver differ",
    ),
    (
        "gpu.ecc-uncorrected",
        Severity::Error,
        "uncorrected ECC errors since the driver loaded",
    ),
    (
        "gpu.row-remap-pending",
        Severity::Error,
        "a memory row remapping waits for a GPU reset",
    ),
    (
        "gpu.row-remap-failed",
        Severity::Error,
        "a memory row remapping failed",
    ),
    (
        "gpu.pages-pending-retirement",
        Severity::Error,
        "memory pages wait for a reset to be retired",
    ),
    (
        "gpu.driver-older-than-companion",
        Severity::Error,
        "the driver supports an older CUDA than hwbench-cuda was built with",
    ),
    (
        "gpu.compute-capability-unsupported",
        Severity::Error,
        "the GPU's compute capability is below hwbench-cuda's kernels",
    ),
    (
        "gpu.nvlink-down",
        Severity::Error,
        "NVLink links down: fewer active than on its peers, or some down on an NVSwitch board",
    ),
    (
        "gpu.clocks-held-down",
        Severity::Warning,
        "clocks held down now by power cap, slowdown, thermal, power brake or sync boost",
    ),
    (
        "gpu.xid-drain",
        Severity::Error,
        "Xid errors in the kernel log after which the GPU must be reset or the node drained",
    ),
    (
        "gpu.xid",
        Severity::Warning,
        "other Xid errors in the kernel log since boot",
    ),
    ("gpu.lost", Severity::Error, "the GPU fell off the bus"),
    (
        "gpu.recovery-needed",
        Severity::Error,
        "the driver asks for the GPU to be reset, drained or the node rebooted (NVML's recovery action)",
    ),
    (
        "gpu.missing-from-nvml",
        Severity::Error,
        "NVIDIA GPUs on the PCI bus that NVML does not see (fallen off the bus, or held by another driver)",
    ),
    (
        "gpu.driver-not-loaded",
        Severity::Warning,
        "NVIDIA GPUs on the PCI bus but no NVIDIA driver to use them",
    ),
    (
        "gpu.pcie-narrow",
        Severity::Warning,
        "PCIe link narrower than the GPU and slot allow, while the GPU works",
    ),
    (
        "gpu.power-limit-low",
        Severity::Warning,
        "power limit below the board's default",
    ),
    ("gpu.memory-full", Severity::Warning, "no free GPU memory"),
    (
        "gpu.temperature-at-slowdown",
        Severity::Warning,
        "GPU temperature at its slowdown threshold",
    ),
    (
        "gpu.other-processes",
        Severity::Warning,
        "other processes use the GPU",
    ),
    (
        "gpu.cpu-affinity",
        Severity::Warning,
        "the GPU's CPUs and the CPUs this process may use do not overlap",
    ),
    (
        "env.cuda-visible-devices-missing",
        Severity::Warning,
        "CUDA_VISIBLE_DEVICES names GPUs that do not exist",
    ),
    (
        "env.cuda-visible-devices-hides-all",
        Severity::Warning,
        "CUDA_VISIBLE_DEVICES hides every GPU",
    ),
    (
        "env.cuda-visible-devices-mixed",
        Severity::Warning,
        "CUDA_VISIBLE_DEVICES mixes indices and UUIDs",
    ),
    (
        "python.torch-without-cuda",
        Severity::Warning,
        "the named Python's torch cannot use the NVIDIA GPUs here",
    ),
    (
        "cpu.fewer-usable-than-cores",
        Severity::Warning,
        "this process may use fewer CPUs than the machine has cores (affinity or cgroup quota)",
    ),
    (
        "cpu.governor",
        Severity::Warning,
        "a cpufreq governor other than performance",
    ),
    (
        "cpu.no-avx2-fma",
        Severity::Warning,
        "an x86-64 CPU without AVX2 or FMA",
    ),
    ("cpu.no-neon", Severity::Warning, "an ARM CPU without NEON"),
    (
        "memory.low-available",
        Severity::Warning,
        "less than 10% of memory available",
    ),
    ("memory.swap-in-use", Severity::Warning, "swap in use"),
    (
        "gpu.pcie-gen-low",
        Severity::Note,
        "PCIe link running below its maximum generation (idle GPUs lower it)",
    ),
    (
        "gpu.pcie-narrow-idle",
        Severity::Note,
        "PCIe link narrower than its maximum on an idle GPU (idle GPUs narrow it)",
    ),
    (
        "gpu.persistence-off",
        Severity::Note,
        "persistence mode off (Linux)",
    ),
    (
        "gpu.mig-enabled",
        Severity::Note,
        "MIG enabled: training sees a slice",
    ),
    (
        "gpu.ecc-off",
        Severity::Note,
        "ECC off on a data-centre GPU",
    ),
    (
        "gpu.mixed-models",
        Severity::Note,
        "GPUs of more than one model",
    ),
    (
        "memory.cgroup-limit",
        Severity::Note,
        "a cgroup memory limit below the machine's memory",
    ),
    (
        "env.virtual-machine",
        Severity::Note,
        "running in a virtual machine",
    ),
    ("env.container", Severity::Note, "running in a container"),
];

/// Everything the rules find in `report`, errors first.
pub fn assess(report: &InfoReport) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut add = |id: &str, subject: &str, evidence: String, advice: &str| {
        let (severity, summary) = RULES
            .iter()
            .find(|(rule, _, _)| *rule == id)
            .map(|(_, severity, summary)| (*severity, *summary))
            .unwrap_or((Severity::Note, ""));
        found.push(Finding {
            id: id.to_string(),
            severity,
            subject: subject.to_string(),
            summary: summary.to_string(),
            evidence,
            advice: advice.to_string(),
        });
    };
    driver(report, &mut add);
    for gpu in &report.gpu.devices {
        gpu_rules(report, gpu, &mut add);
    }
    cuda_visible_devices(report, &mut add);
    python(report, &mut add);
    cpu_rules(&report.cpu, &mut add);
    memory_rules(report, &mut add);
    environment(&report.cpu, &mut add);
    found.sort_by_key(|f| std::cmp::Reverse(f.severity));
    found
}

type Add<'a> = dyn FnMut(&str, &str, String, &str) + 'a;

fn driver(report: &InfoReport, add: &mut Add) {
    let gpus = &report.gpu;
    if let Some(error) = &gpus.nvml_error
        && error.contains("mismatch")
    {
        add(
            "gpu.driver-mismatch",
            "NVIDIA driver",
            format!("NVML: {error}"),
            "reboot, or unload and reload the nvidia kernel modules, so that they match the installed driver",
        );
    }
    if let Some(on_bus) = gpus.pci_gpus.as_ref().filter(|found| !found.is_empty()) {
        let seen: Vec<String> = gpus
            .devices
            .iter()
            .filter_map(|g| g.pci_bus_id.as_deref().map(pci_slot))
            .collect();
        if gpus.nvml_loaded {
            let missing: Vec<&str> = on_bus
                .iter()
                .filter(|address| !seen.contains(&pci_slot(address)))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                add(
                    "gpu.missing-from-nvml",
                    "GPUs",
                    format!(
                        "{} NVIDIA GPUs on the PCI bus, NVML sees {}; not seen: {}",
                        on_bus.len(),
                        gpus.devices.len(),
                        missing.join(", ")
                    ),
                    "a GPU has fallen off the bus or is held by another driver: look for Xid 79 in the kernel log and at `lspci -k`; drain the node and reset or reseat the GPU",
                );
            }
        } else if gpus.nvml_error.is_none() {
            add(
                "gpu.driver-not-loaded",
                "NVIDIA driver",
                format!(
                    "{} NVIDIA GPUs on the PCI bus; {}",
                    on_bus.len(),
                    gpus.message.as_deref().unwrap_or("NVML did not start")
                ),
                "install or load the NVIDIA driver (nvidia-smi must list the GPUs), or nothing can train on them",
            );
        }
    }
    for x in gpus.xids.iter().flatten() {
        let subject = gpus
            .devices
            .iter()
            .find(|g| {
                g.pci_bus_id
                    .as_deref()
                    .is_some_and(|bus| super::gpu::same_pci_device(&x.pci, bus))
            })
            .map_or_else(
                || format!("GPU at PCI {}", x.pci),
                |g| format!("GPU {}", g.index),
            );
        let evidence = format!(
            "Xid {}, {} since boot, PCI {}",
            x.xid,
            if x.count == 1 {
                "once".to_string()
            } else {
                format!("{} times", x.count)
            },
            x.pci
        );
        if super::xid::DRAIN.contains(&x.xid) {
            add(
                "gpu.xid-drain",
                &subject,
                evidence,
                "drain the node and reset the GPU (nvidia-smi -r) or reboot; look the number up in NVIDIA's Xid catalog, and reseat or replace a GPU that comes back with it",
            );
        } else {
            add(
                "gpu.xid",
                &subject,
                evidence,
                "look the number up in NVIDIA's Xid catalog: many come from the application (an illegal memory access), some from the GPU; watch whether it comes back",
            );
        }
    }
    for gpu in gpus.devices.iter().filter(|g| g.lost) {
        add(
            "gpu.lost",
            &format!("GPU {}", gpu.index),
            format!(
                "NVML: GPU_IS_LOST{}",
                gpu.pci_bus_id
                    .as_deref()
                    .map(|bus| format!(" (PCI {bus})"))
                    .unwrap_or_default()
            ),
            "drain the node: the GPU needs a reset (nvidia-smi -r) or a reboot; look for Xid 79 in the kernel log, and reseat or replace it if it comes back",
        );
    }
    for gpu in &gpus.devices {
        let Some(action) = gpu.recovery_action.as_deref().filter(|a| *a != "none") else {
            continue;
        };
        let advice = match action {
            "gpu_reset" => {
                "drain the GPU's jobs and reset it (nvidia-smi -r -i INDEX); look for Xids in the kernel log"
            }
            "node_reboot" => {
                "drain the node and reboot it: a GPU reset is not enough; look for Xids in the kernel log"
            }
            "drain_p2p" => {
                "stop peer-to-peer (NVLink) traffic: drain the multi-GPU jobs, then reset the GPU"
            }
            "drain_and_reset" => "drain the GPU's jobs, then reset it (nvidia-smi -r -i INDEX)",
            _ => "drain the node and follow NVIDIA's recovery steps for this action",
        };
        add(
            "gpu.recovery-needed",
            &format!("GPU {}", gpu.index),
            format!("NVML's GPU recovery action: {action}"),
            advice,
        );
    }
    let mut names: Vec<&str> = gpus
        .devices
        .iter()
        .filter_map(|g| g.name.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > 1 {
        add(
            "gpu.mixed-models",
            "GPUs",
            names.join(", "),
            "timings differ by GPU: compare like with like (hwbench trains on each model)",
        );
    }
    if let (Some(driver), Some(build)) = (
        gpus.cuda_driver_version.as_deref(),
        &report.build.cuda_companion.build,
    ) && let (Some(have), Some(need)) = (version(driver), version(&build.cuda_version))
        && have < need
    {
        add(
            "gpu.driver-older-than-companion",
            "NVIDIA driver",
            format!(
                "the driver supports CUDA {driver}; hwbench-cuda was built with CUDA {}",
                build.cuda_version
            ),
            "upgrade the NVIDIA driver (580 or newer for CUDA 13.0), or build hwbench-cuda with an older CUDA",
        );
    }
}

fn version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn gpu_rules(report: &InfoReport, gpu: &GpuReport, add: &mut Add) {
    let subject = format!("GPU {}", gpu.index);
    let subject = subject.as_str();
    nvlink(report, gpu, subject, add);
    if let Some(reasons) = &gpu.clocks_event_reasons {
        let holding: Vec<&str> = reasons
            .iter()
            .map(String::as_str)
            .filter(|r| {
                !matches!(
                    *r,
                    "gpu_idle" | "applications_clocks_setting" | "display_clock_setting"
                )
            })
            .collect();
        // The software power cap alone on an idle GPU is the driver saving power, not a fault.
        let idle_power_saving = holding == ["sw_power_cap"] && !busy(gpu);
        if !holding.is_empty() && !idle_power_saving {
            let clock = match (gpu.sm_clock_mhz, gpu.sm_clock_max_mhz) {
                (Some(now), Some(max)) => format!("; SM clock {now} of {max} MHz"),
                _ => String::new(),
            };
            let power = match (gpu.power_limit_enforced_w, gpu.power_limit_default_w) {
                (Some(now), Some(default)) if now < default => {
                    format!("; power limit {now:.0} W of {default:.0} W by default")
                }
                _ => String::new(),
            };
            // One piece of advice per kind of reason, in the order NVML gave them.
            let mut advice: Vec<&str> = Vec::new();
            for reason in &holding {
                let line = match *reason {
                    "sw_power_cap" => {
                        "the power limit holds the clocks down: check `nvidia-smi -q -d POWER` and raise the limit (nvidia-smi -pl) to the default"
                    }
                    "sw_thermal_slowdown" | "hw_thermal_slowdown" => {
                        "the GPU is too hot: check its cooling, fans and airflow"
                    }
                    "sync_boost" => {
                        "it is held to the slowest GPU of its sync boost group: compare each GPU alone"
                    }
                    _ => {
                        "the board asks for lower clocks (power delivery or temperature): check power cables, the power supply and cooling"
                    }
                };
                if !advice.contains(&line) {
                    advice.push(line);
                }
            }
            add(
                "gpu.clocks-held-down",
                subject,
                format!("clocks event reasons: {}{clock}{power}", holding.join(", ")),
                &advice.join("; "),
            );
        }
    }
    if let (Some(limit), Some(default)) = (
        gpu.power_limit_enforced_w.or(gpu.power_limit_w),
        gpu.power_limit_default_w,
    ) && limit < default * 0.95
    {
        add(
            "gpu.power-limit-low",
            subject,
            format!("power limit {limit:.0} W of {default:.0} W by default"),
            "under load the clocks will be held down: raise the limit to the default (nvidia-smi -pl, as root) unless it was lowered on purpose",
        );
    }
    // At the threshold the board is about to slow down, even if no thermal reason shows yet (a
    // thermal reason already makes `gpu.clocks-held-down`).
    let thermal_reason = gpu.clocks_event_reasons.as_ref().is_some_and(|reasons| {
        reasons
            .iter()
            .any(|r| r == "sw_thermal_slowdown" || r == "hw_thermal_slowdown")
    });
    if let (Some(now), Some(slowdown)) = (gpu.temperature_c, gpu.temperature_slowdown_c)
        && slowdown > 0
        && now.saturating_add(2) >= slowdown
        && !thermal_reason
    {
        add(
            "gpu.temperature-at-slowdown",
            subject,
            format!("{now} °C, slowdown at {slowdown} °C"),
            "the GPU is about to slow itself down: check its cooling, fans and airflow before timing anything",
        );
    }
    if let (Some(free), Some(total)) = (gpu.memory_free_mib, gpu.memory_total_mib)
        && total > 0
        && free.saturating_mul(100) < total
    {
        add(
            "gpu.memory-full",
            subject,
            format!("{free} MiB free of {total} MiB"),
            "training here will run out of memory: see which processes hold it (nvidia-smi), stop them, or use another GPU",
        );
    }
    if let (Some(width), Some(max)) = (gpu.pcie_width_current, gpu.pcie_width_max)
        && width < max
    {
        let evidence = format!(
            "PCIe {} of {}",
            link(gpu.pcie_generation_current, width),
            link(gpu.pcie_generation_max, max)
        );
        // An idle GPU narrows its link to save power: only a working GPU's narrow link is a fault.
        if busy(gpu) {
            add(
                "gpu.pcie-narrow",
                subject,
                evidence,
                "the link trained narrower than GPU and slot allow, so host transfers run slower: reseat the GPU, check the riser and the slot's lanes (BIOS bifurcation)",
            );
        } else {
            add(
                "gpu.pcie-narrow-idle",
                subject,
                format!("idle: {evidence}"),
                "an idle GPU narrows its link to save power: look again while it works (nvidia-smi -q -d PCIE) before reseating anything",
            );
        }
    } else if let (Some(generation), Some(max)) =
        (gpu.pcie_generation_current, gpu.pcie_generation_max)
        && generation < max
    {
        add(
            "gpu.pcie-gen-low",
            subject,
            format!("PCIe Gen{generation} of Gen{max}"),
            "an idle GPU lowers its link speed to save power: look again while it works (nvidia-smi -q -d PCIE)",
        );
    }
    if let Some(errors) = gpu.ecc_uncorrected_volatile
        && errors > 0
    {
        add(
            "gpu.ecc-uncorrected",
            subject,
            format!("{errors} uncorrected ECC errors since the driver loaded"),
            "results on this GPU may be wrong: reset it (nvidia-smi -r) or reboot; if errors come back, contact the vendor",
        );
    }
    if let Some(rows) = gpu.remapped_rows {
        if rows.pending {
            add(
                "gpu.row-remap-pending",
                subject,
                format!(
                    "row remapping pending ({} uncorrectable rows remapped so far)",
                    rows.uncorrectable
                ),
                "reset the GPU (nvidia-smi -r) before training on it, so that the remapping takes effect",
            );
        }
        if rows.failed {
            add(
                "gpu.row-remap-failed",
                subject,
                "row remapping failed".to_string(),
                "the GPU's memory is failing: take it out of service and contact the vendor",
            );
        }
    }
    if gpu.retired_pages_pending == Some(true) {
        add(
            "gpu.pages-pending-retirement",
            subject,
            "pages pending retirement".to_string(),
            "reset the GPU (nvidia-smi -r) to retire them; if pages keep failing, contact the vendor",
        );
    }
    if let Some(evidence) = other_processes(gpu) {
        add(
            OTHER_PROCESSES,
            subject,
            evidence,
            "their work disturbs every timing on this GPU: stop them, or train on another GPU",
        );
    }
    if std::env::consts::OS == "linux" && gpu.persistence_mode == Some(false) {
        add(
            "gpu.persistence-off",
            subject,
            "persistence mode off".to_string(),
            "the first CUDA call pays for starting the driver: enable persistence (nvidia-persistenced, or nvidia-smi -pm 1)",
        );
    }
    if gpu.mig_enabled == Some(true) {
        add(
            "gpu.mig-enabled",
            subject,
            format!("MIG on, {} MIG devices", gpu.mig_devices.len()),
            "training sees one MIG slice, not the whole GPU: compare with the slice's size in mind",
        );
    }
    if gpu.class.as_deref() == Some("data centre") && gpu.ecc_enabled == Some(false) {
        add(
            "gpu.ecc-off",
            subject,
            "ECC off".to_string(),
            "memory errors go unnoticed: enable ECC (nvidia-smi -e 1) and reset the GPU",
        );
    }
    if let Some(cc) = gpu.compute_capability.as_deref()
        && !report.build.cuda_companion.supports_compute_capability(cc)
        && let Some(build) = &report.build.cuda_companion.build
    {
        add(
            "gpu.compute-capability-unsupported",
            subject,
            format!(
                "compute capability {cc}; hwbench-cuda's kernels are for {}{}",
                build.compute_capability,
                if build.ptx { " and newer" } else { " only" }
            ),
            "rebuild hwbench-cuda for this GPU (CUDA_COMPUTE_CAP=… scripts/build-cuda.sh)",
        );
    }
    if let (Some(near), Some(mine)) = (&gpu.cpu_affinity, &report.cpu.affinity_list) {
        let near = parse_cpu_list(near);
        let mine = parse_cpu_list(mine);
        if !near.is_empty() && !mine.is_empty() && !near.iter().any(|cpu| mine.contains(cpu)) {
            add(
                "gpu.cpu-affinity",
                subject,
                format!(
                    "the GPU's CPUs are {}, this process may use {}",
                    gpu.cpu_affinity.as_deref().unwrap_or_default(),
                    report.cpu.affinity_list.as_deref().unwrap_or_default()
                ),
                "every host transfer crosses to the other socket: run on the GPU's CPUs (numactl --cpunodebind, or taskset)",
            );
        }
    }
}

/// Whether the GPU is working now: NVML's utilisation at least 10% and no `gpu_idle` clocks
/// event reason. Where neither is known it is taken as idle, so that an idle-state reading never
/// raises an alarm.
fn busy(gpu: &GpuReport) -> bool {
    let idle_reason = gpu
        .clocks_event_reasons
        .as_ref()
        .is_some_and(|reasons| reasons.iter().any(|r| r == "gpu_idle"));
    !idle_reason && gpu.utilization_gpu_percent.is_some_and(|u| u >= 10)
}

/// The id of the finding about other processes on a GPU.
pub const OTHER_PROCESSES: &str = "gpu.other-processes";

/// What the other processes on `gpu` are: how many, their memory, and their names and pids where
/// the report still has them; `None` when there are none (or NVML could not say).
pub fn other_processes(gpu: &GpuReport) -> Option<String> {
    let processes = gpu.processes.as_ref().filter(|p| !p.is_empty())?;
    // NVML's numbers can be anything: add without wrapping around.
    let memory = processes
        .iter()
        .filter_map(|p| p.memory_used_mib)
        .fold(0u64, u64::saturating_add);
    let named: Vec<String> = processes
        .iter()
        .filter_map(|p| match (&p.name, p.pid) {
            (Some(name), Some(pid)) => Some(format!("{name} ({pid})")),
            (None, Some(pid)) => Some(format!("pid {pid}")),
            _ => None,
        })
        .collect();
    Some(format!(
        "{} other process{} using {memory} MiB{}",
        processes.len(),
        if processes.len() == 1 { "" } else { "es" },
        if named.is_empty() {
            String::new()
        } else {
            format!(": {}", named.join(", "))
        }
    ))
}

fn link(generation: Option<u32>, width: u32) -> String {
    match generation {
        Some(g) => format!("Gen{g} x{width}"),
        None => format!("x{width}"),
    }
}

fn cuda_visible_devices(report: &InfoReport, add: &mut Add) {
    let Some(list) = report.cuda_environment.cuda_visible_devices.as_deref() else {
        return;
    };
    let gpus = &report.gpu.devices;
    if gpus.is_empty() {
        return;
    }
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    let is_uuid = |e: &str| e.starts_with("GPU-") || e.starts_with("MIG-");
    let exists = |e: &str| {
        if is_uuid(e) {
            gpus.iter().any(|g| {
                g.uuid.as_deref().is_some_and(|u| u.starts_with(e))
                    || g.mig_devices
                        .iter()
                        .any(|m| m.uuid.as_deref().is_some_and(|u| u.starts_with(e)))
            })
        } else {
            e.parse::<usize>().is_ok_and(|i| i < gpus.len())
        }
    };
    let visible = crate::info::gpu::visible_count(&report.gpu, Some(list));
    if visible == 0 {
        add(
            "env.cuda-visible-devices-hides-all",
            "environment",
            format!(
                "CUDA_VISIBLE_DEVICES={list:?} with {}",
                gpus_here(gpus.len())
            ),
            "no framework sees a GPU: unset CUDA_VISIBLE_DEVICES or name a GPU that exists",
        );
    } else {
        let missing: Vec<&str> = entries
            .iter()
            .copied()
            .filter(|e| !e.is_empty() && !exists(e))
            .collect();
        if !missing.is_empty() {
            add(
                "env.cuda-visible-devices-missing",
                "environment",
                format!(
                    "CUDA_VISIBLE_DEVICES names {} that do not exist ({}); CUDA stops at the first",
                    missing.join(", "),
                    gpus_here(gpus.len())
                ),
                "name GPUs by index (0 to the GPU count − 1) or by the UUIDs `hwbench info --no-redact` shows",
            );
        }
    }
    if entries.iter().any(|e| is_uuid(e)) && entries.iter().any(|e| e.parse::<usize>().is_ok()) {
        add(
            "env.cuda-visible-devices-mixed",
            "environment",
            format!("CUDA_VISIBLE_DEVICES={list:?}"),
            "use either indices or UUIDs: CUDA reads a mixed list differently from what most people expect",
        );
    }
}

fn cpu_rules(cpu: &CpuReport, add: &mut Add) {
    if let (Some(usable), Some(cores)) = (cpu.usable_cpus, cpu.physical_cores)
        && usable < cores
    {
        let mut limits = Vec::new();
        if let Some(affinity) = cpu.affinity_cpus
            && affinity < cores
        {
            limits.push(format!("affinity mask of {affinity} CPUs"));
        }
        if let Some(quota) = cpu.cgroup_cpu_quota {
            limits.push(format!("cgroup CPU quota of {quota:.2} CPUs"));
        }
        add(
            "cpu.fewer-usable-than-cores",
            "CPU",
            format!(
                "{usable} usable CPUs of {cores} cores{}",
                if limits.is_empty() {
                    String::new()
                } else {
                    format!(": {}", limits.join(", "))
                }
            ),
            "training and hwbench use only these: widen the affinity (taskset, cpuset) or the container's CPU quota",
        );
    }
    if let Some(governor) = &cpu.governor
        && governor != "performance"
    {
        add(
            "cpu.governor",
            "CPU",
            format!("cpufreq governor {governor}"),
            "the clock follows the load, so timings vary: set the performance governor (cpupower frequency-set -g performance)",
        );
    }
    let missing = |feature: &str| cpu.features_missing.iter().any(|f| f == feature);
    // Which list was looked at says which kind of CPU this is (a recorded machine may not be the
    // one hwbench was built for).
    let looked_for = |feature: &str| missing(feature) || cpu.features.iter().any(|f| f == feature);
    if looked_for("avx2") && (missing("avx2") || missing("fma")) {
        let absent: Vec<&str> = ["avx2", "fma"].into_iter().filter(|f| missing(f)).collect();
        add(
            "cpu.no-avx2-fma",
            "CPU",
            format!("no {}", absent.join(" or ")),
            "ML kernels fall back to slow paths: train on a CPU with AVX2 and FMA (x86-64-v3), or check that the hypervisor passes them through",
        );
    } else if looked_for("neon") && missing("neon") {
        add(
            "cpu.no-neon",
            "CPU",
            "no NEON".to_string(),
            "ML kernels fall back to scalar code: train on a CPU with NEON (every ARMv8-A application core has it)",
        );
    }
}

/// NVLink links down: fewer active than on another GPU of the same model, or some down while
/// others lead to NVSwitches (an HGX board, where every link should be up). A lone card with some
/// links unused (a bridge on part of them) is no fault.
fn nvlink(report: &InfoReport, gpu: &GpuReport, subject: &str, add: &mut Add) {
    let (Some(links), Some(here)) = (&gpu.nvlinks, gpu.active_nvlinks()) else {
        return;
    };
    let down = gpu.nvlinks_down();
    let peer = report
        .gpu
        .devices
        .iter()
        .filter(|o| o.index != gpu.index && o.name == gpu.name)
        .filter_map(|o| Some((o.index, o.active_nvlinks()?)))
        .max_by_key(|&(_, n)| n);
    let behind = peer.filter(|&(_, most)| here < most);
    let switched = here > 0 && crate::info::gpu::nvswitched(gpu, &report.gpu.devices);
    if down.is_empty() || (behind.is_none() && !switched) {
        return;
    }
    let mut evidence = format!(
        "{here} of {} NVLink links active; down: {}",
        links.len(),
        down.join(", ")
    );
    if let Some((index, most)) = behind {
        evidence.push_str(&format!("; GPU {index}, the same model, has {most} active"));
    }
    add(
        "gpu.nvlink-down",
        subject,
        evidence,
        "multi-GPU training falls back to slower paths: check the fabric manager (nvidia-fabricmanager), reseat or replace the board, and run `dcgmi diag -r 2`",
    );
}

/// torch that cannot use CUDA on a machine with NVIDIA GPUs: a CPU-only build (the commonest
/// cause of "training is slow" tickets), or a CUDA build that cannot start on this driver.
fn python(report: &InfoReport, add: &mut Add) {
    let py = &report.python;
    if report.gpu.devices.is_empty() || py.torch_cuda_available != Some(false) {
        return;
    }
    let torch = py.torch.as_deref().unwrap_or("torch");
    let (evidence, advice) = match &py.torch_cuda {
        None => (
            format!("torch {torch} is a CPU-only build (torch.version.cuda is None)"),
            "install a CUDA build of torch (pytorch.org lists the pip command for this driver's CUDA)".to_string(),
        ),
        Some(cuda) => (
            format!(
                "torch {torch}, built with CUDA {cuda}: torch.cuda.is_available() is False; the driver supports CUDA {}",
                report.gpu.cuda_driver_version.as_deref().unwrap_or("(unknown)")
            ),
            format!(
                "a driver for CUDA {cuda} or newer, or a torch built for the driver's CUDA; check CUDA_VISIBLE_DEVICES"
            ),
        ),
    };
    add(
        "python.torch-without-cuda",
        py.interpreter.as_deref().unwrap_or("Python"),
        evidence,
        &advice,
    );
}

fn memory_rules(report: &InfoReport, add: &mut Add) {
    let memory = &report.memory;
    if let (Some(total), Some(available)) = (memory.total_mib, memory.available_mib)
        && total > 0
        && available * 10 < total
    {
        add(
            "memory.low-available",
            "memory",
            format!("{} available of {}", gib(available), gib(total)),
            "training may swap or be killed: stop what holds the memory, or train something smaller",
        );
    }
    if let (Some(total), Some(free)) = (memory.swap_total_mib, memory.swap_free_mib)
        && total > free
    {
        add(
            "memory.swap-in-use",
            "memory",
            format!("{} MiB of swap in use", total - free),
            "swapping slows everything unpredictably: free memory before timing",
        );
    }
    if let Some(limit) = memory.cgroup_limit_mib {
        add(
            "memory.cgroup-limit",
            "memory",
            format!(
                "cgroup memory limit {} of {}",
                gib(limit),
                memory.total_mib.map_or("n/a".to_string(), gib)
            ),
            "a run larger than the limit is killed: size models to the limit, not to the machine",
        );
    }
}

fn environment(cpu: &CpuReport, add: &mut Add) {
    // "virtual machine (KVM)" → "KVM".
    let inside = |hint: &str| -> String {
        match hint.split_once('(') {
            Some((_, rest)) => rest.trim_end_matches(')').to_string(),
            None => hint.to_string(),
        }
    };
    for hint in &cpu.virtualization {
        if hint.starts_with("virtual machine") {
            add(
                "env.virtual-machine",
                "environment",
                inside(hint),
                "timings include the hypervisor: a passed-through GPU pays more for each kernel launch than on bare metal",
            );
        } else if hint.starts_with("container") {
            add(
                "env.container",
                "environment",
                inside(hint),
                "timings include the container's limits: compare with runs in the same kind of container",
            );
        }
    }
}

/// "1 GPU here", "2 GPUs here".
fn gpus_here(count: usize) -> String {
    format!("{count} GPU{} here", if count == 1 { "" } else { "s" })
}
