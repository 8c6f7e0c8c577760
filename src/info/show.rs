//! How an [`InfoReport`] reads: the findings first, a short summary, then every section in detail.
//! Markdown keeps errors and warnings in view and folds the notes away with the details.

use super::InfoReport;
use super::cpu::CpuReport;
use super::findings::{Finding, Severity};
use super::gpu::{GpuReport, GpuSection};
use super::python::Source;
use crate::readable::gib;
use crate::render::document::{NA, Pairs};
use crate::render::prometheus::Metric;
use crate::render::{Document, Render, Section};

impl Render for InfoReport {
    fn document(&self) -> Document {
        let mut details = vec![
            Section::pairs("CPU", cpu_pairs(&self.cpu)),
            Section::pairs("Memory", memory_pairs(self)),
            Section::pairs("Operating system", os_pairs(self)),
            Section::pairs("NVIDIA driver", driver_pairs(&self.gpu)),
        ];
        for gpu in &self.gpu.devices {
            details.push(Section::pairs(format!("GPU {}", gpu.index), gpu_pairs(gpu)));
        }
        if !self.gpu.topology.is_empty() {
            details.push(Section::pairs("GPU topology", topology_pairs(&self.gpu)));
        }
        details.push(Section::pairs("CUDA environment", cuda_env_pairs(self)));
        details.push(Section::pairs("Python", python_pairs(self)));
        details.push(Section::pairs("This build", build_pairs(self)));
        Document {
            title: "hwbench info".to_string(),
            summary: vec![
                findings_section("Findings", &self.findings),
                Section::pairs("Summary", summary(self)),
            ],
            details,
        }
    }

    /// Errors and warnings stay in view; notes go with the details.
    fn markdown(&self) -> String {
        crate::render::markdown::render(&self.markdown_document())
    }

    fn metrics(&self) -> Vec<Metric> {
        const MIB: f64 = 1024.0 * 1024.0;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let count = |v: Option<usize>| v.map(|n| n as f64);
        let cpu = &self.cpu;
        let mut metrics = vec![
            Metric::info(
                "build_info",
                "This hwbench build.",
                &[
                    ("version", &self.build.hwbench_version),
                    ("target", &self.build.target),
                    (
                        "cuda_companion",
                        if self.build.cuda_companion.available {
                            "yes"
                        } else {
                            "no"
                        },
                    ),
                ],
            ),
            Metric::info(
                "cpu_info",
                "The CPU.",
                &[
                    ("model", &text(&cpu.model_name)),
                    ("vendor", &text(&cpu.vendor)),
                    ("architecture", &cpu.architecture),
                    ("microarchitecture", &text(&cpu.microarchitecture)),
                    ("x86_64_level", &text(&cpu.x86_64_level)),
                ],
            ),
            Metric::new("cpu_logical_cpus", "Logical CPUs online on the host.")
                .sample(&[], count(cpu.logical_cpus)),
            Metric::new("cpu_physical_cores", "Physical cores on the host.")
                .sample(&[], count(cpu.physical_cores)),
            Metric::new(
                "cpu_usable_cpus",
                "CPUs this process may use (affinity and cgroup quota).",
            )
            .sample(&[], count(cpu.usable_cpus)),
            Metric::new("memory_total_bytes", "Host memory.")
                .sample(&[], self.memory.total_mib.map(|m| m as f64 * MIB)),
            Metric::new(
                "memory_cgroup_limit_bytes",
                "cgroup memory limit, when below the host's memory.",
            )
            .sample(&[], self.memory.cgroup_limit_mib.map(|m| m as f64 * MIB)),
            Metric::info(
                "os_info",
                "The operating system.",
                &[
                    ("name", &text(&self.os.long_name)),
                    ("kernel", &text(&self.os.kernel)),
                ],
            ),
            Metric::new("gpus", "NVIDIA GPUs NVML reports.")
                .sample(&[], Some(self.gpu.devices.len() as f64)),
            // "No GPU" and "no driver library" both read hwbench_gpus 0: this tells them apart.
            Metric::new(
                "nvml_up",
                "1 when NVML answered, 0 when it could not be used (reason says why).",
            )
            .sample(
                &[(
                    "reason",
                    if self.gpu.nvml_loaded {
                        ""
                    } else {
                        self.gpu
                            .message
                            .as_deref()
                            .unwrap_or("NVML could not be used")
                    },
                )],
                Some(if self.gpu.nvml_loaded { 1.0 } else { 0.0 }),
            ),
        ];
        let python = &self.python;
        if let Some(version) = &python.version {
            metrics.push(Metric::info(
                "python_info",
                "The Python and its torch and numpy: named with --python or HWBENCH_PYTHON and run (source \"ran\"), or python3 on PATH read from its files (source \"files\").",
                &[
                    ("source", python.source.map_or("", Source::name)),
                    ("version", version),
                    ("torch", &text(&python.torch)),
                    ("torch_cuda", &text(&python.torch_cuda)),
                    ("cudnn", &text(&python.cudnn)),
                    ("numpy", &text(&python.numpy)),
                ],
            ));
            metrics.push(
                Metric::new(
                    "torch_cuda_devices",
                    "CUDA devices torch can use (0 when torch.cuda.is_available() is False).",
                )
                .sample(
                    &[],
                    python
                        .torch_cuda_available
                        .map(|_| f64::from(python.torch_cuda_devices.unwrap_or(0))),
                ),
            );
        }
        if self.gpu.nvml_loaded {
            metrics.push(Metric::info(
                "nvidia_driver_info",
                "NVIDIA driver, the CUDA version it supports, and NVML.",
                &[
                    ("driver_version", &text(&self.gpu.driver_version)),
                    ("cuda_driver_version", &text(&self.gpu.cuda_driver_version)),
                    ("nvml_version", &text(&self.gpu.nvml_version)),
                ],
            ));
        }
        let mut info = Metric::new("gpu_info", "One NVIDIA GPU.");
        let mut memory = Metric::new("gpu_memory_total_bytes", "GPU memory.");
        let mut power = Metric::new("gpu_power_limit_watts", "Power limit enforced.");
        let mut sm_clock = Metric::new("gpu_sm_clock_max_hertz", "Maximum SM clock.");
        let mut mig = Metric::new("gpu_mig_enabled", "1 when MIG mode is on.");
        let mut nvlinks = Metric::new(
            "gpu_nvlinks_active",
            "NVLink links up (no sample on GPUs without NVLink).",
        );
        for gpu in &self.gpu.devices {
            let index = gpu.index.to_string();
            let id = [("gpu", index.as_str())];
            info = info.sample(
                &[
                    ("gpu", &index),
                    ("name", &text(&gpu.name)),
                    ("architecture", &text(&gpu.architecture)),
                    ("compute_capability", &text(&gpu.compute_capability)),
                    ("uuid", &text(&gpu.uuid)),
                    ("pci_bus_id", &text(&gpu.pci_bus_id)),
                ],
                Some(1.0),
            );
            memory = memory.sample(&id, gpu.memory_total_mib.map(|m| m as f64 * MIB));
            power = power.sample(&id, gpu.power_limit_enforced_w);
            sm_clock = sm_clock.sample(&id, gpu.sm_clock_max_mhz.map(|m| f64::from(m) * 1e6));
            mig = mig.sample(&id, gpu.mig_enabled.map(|on| if on { 1.0 } else { 0.0 }));
            nvlinks = nvlinks.sample(&id, gpu.active_nvlinks().map(|n| n as f64));
        }
        metrics.extend([info, memory, power, sm_clock, mig, nvlinks]);
        let mut finding = Metric::new(
            "finding",
            "1 for each finding: what on this machine makes training slow or wrong.",
        );
        for f in &self.findings {
            finding = finding.sample(
                &[
                    ("id", f.id.as_str()),
                    ("severity", f.severity.name()),
                    ("subject", f.subject.as_str()),
                ],
                Some(1.0),
            );
        }
        metrics.push(finding);
        let mut peak = Metric::new(
            "gpu_fp32_peak_flops",
            "Theoretical FP32 throughput: CUDA cores × 2 × the rated boost clock (see fp32_peak_basis).",
        );
        for gpu in &self.gpu.devices {
            peak = peak.sample(
                &[("gpu", &gpu.index.to_string())],
                gpu.fp32_peak_tflops.map(|t| t * 1e12),
            );
        }
        metrics.push(peak);
        metrics
    }
}

impl InfoReport {
    /// The document Markdown draws: errors and warnings first in the summary, notes first in the
    /// details (a bug report is built from it too).
    pub fn markdown_document(&self) -> Document {
        let mut doc = self.document();
        let (serious, notes): (Vec<Finding>, Vec<Finding>) = self
            .findings
            .iter()
            .cloned()
            .partition(|f| f.severity > Severity::Note);
        doc.summary[0] = if serious.is_empty() && !notes.is_empty() {
            Section::text(
                "Findings",
                vec![format!(
                    "No errors or warnings; {} note{} in the details.",
                    notes.len(),
                    if notes.len() == 1 { "" } else { "s" }
                )],
            )
        } else {
            findings_section("Findings", &serious)
        };
        if !notes.is_empty() {
            doc.details
                .insert(0, findings_section("Findings: notes", &notes));
        }
        doc
    }
}

/// The findings as a grid, or one line saying there are none.
pub fn findings_section(title: &str, findings: &[Finding]) -> Section {
    if findings.is_empty() {
        return Section::text(
            title,
            vec!["None: nothing here is known to make training slow or wrong.".to_string()],
        );
    }
    let rows = findings
        .iter()
        .map(|f| {
            vec![
                f.severity.name().to_string(),
                format!("{}: {} ({}) [{}]", f.subject, f.summary, f.evidence, f.id),
                f.advice.clone(),
            ]
        })
        .collect();
    Section::grid(
        title,
        ["severity", "finding", "what to do"]
            .map(String::from)
            .to_vec(),
        rows,
    )
}

fn or_na(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| NA.to_string())
}

fn summary(r: &InfoReport) -> Vec<(String, String)> {
    let cpu = &r.cpu;
    let mut p = Pairs::new();
    p.add(
        "CPU",
        format!(
            "{} ({})",
            or_na(&cpu.model_name),
            cpu.microarchitecture
                .as_deref()
                .unwrap_or("unknown generation")
        ),
    )
    .add("cores / threads / usable", topology(cpu))
    .opt("memory", r.memory.total_mib, gib)
    .add(
        "OS",
        format!("{}, kernel {}", or_na(&r.os.long_name), or_na(&r.os.kernel)),
    );
    if r.gpu.devices.is_empty() {
        p.add(
            "GPUs",
            r.gpu.message.clone().unwrap_or_else(|| "none".to_string()),
        );
    } else if r.gpu.devices.len() <= SUMMARY_GPUS {
        for gpu in &r.gpu.devices {
            p.add(&format!("GPU {}", gpu.index), gpu_line(gpu));
        }
    } else {
        // Many GPUs: one line per kind, so that the summary stays short on any machine.
        let mut kinds: Vec<(String, usize)> = Vec::new();
        let mut position: std::collections::HashMap<String, usize> = Default::default();
        for line in r.gpu.devices.iter().map(gpu_line) {
            match position.get(&line) {
                Some(&at) => kinds[at].1 += 1,
                None => {
                    position.insert(line.clone(), kinds.len());
                    kinds.push((line, 1));
                }
            }
        }
        let shown: Vec<String> = kinds
            .iter()
            .take(SUMMARY_GPUS)
            .map(|(kind, count)| format!("{count} × {kind}"))
            .collect();
        let more = kinds.len().saturating_sub(SUMMARY_GPUS);
        p.add(
            "GPUs",
            match more {
                0 => shown.join("; "),
                n => format!("{}; and {n} other kinds", shown.join("; ")),
            },
        );
    }
    if !r.gpu.devices.is_empty() {
        p.add(
            "driver / CUDA (driver supports)",
            format!(
                "{} / {}",
                or_na(&r.gpu.driver_version),
                or_na(&r.gpu.cuda_driver_version)
            ),
        );
    }
    p.add("CUDA training", cuda_training(r));
    p.finish()
}

/// GPUs listed one by one in the summary; more are counted by kind.
const SUMMARY_GPUS: usize = 8;

fn gpu_line(gpu: &GpuReport) -> String {
    format!(
        "{}, {}, CC {}",
        or_na(&gpu.name),
        gpu.memory_total_mib.map_or(NA.to_string(), gib),
        or_na(&gpu.compute_capability)
    )
}

fn cuda_training(r: &InfoReport) -> String {
    let companion = &r.build.cuda_companion;
    if companion.available {
        format!("yes: {}", companion.detail)
    } else {
        format!("no: {}", companion.detail)
    }
}

fn topology(cpu: &CpuReport) -> String {
    let n = |v: Option<usize>| v.map_or(NA.to_string(), |v| v.to_string());
    format!(
        "{} cores / {} threads / {} usable",
        n(cpu.physical_cores),
        n(cpu.logical_cpus),
        n(cpu.usable_cpus)
    )
}

fn cpu_pairs(cpu: &CpuReport) -> Vec<(String, String)> {
    let mut p = Pairs::new();
    p.add("model", or_na(&cpu.model_name))
        .add("vendor", or_na(&cpu.vendor))
        .add("architecture", cpu.architecture.clone())
        .add("microarchitecture", or_na(&cpu.microarchitecture))
        .add("signature", or_na(&cpu.signature))
        .opt("sockets", cpu.sockets, |v| v.to_string())
        .opt("physical cores", cpu.physical_cores, |v| v.to_string())
        .opt("logical CPUs (host)", cpu.logical_cpus, |v| v.to_string())
        .opt("SMT", cpu.smt_enabled, |on| {
            if on { "on" } else { "off" }.to_string()
        })
        .opt("usable CPUs (this process)", cpu.usable_cpus, |v| {
            v.to_string()
        })
        .opt("affinity mask", cpu.affinity_cpus, |v| format!("{v} CPUs"))
        .add(
            "cgroup CPU quota",
            cpu.cgroup_cpu_quota
                .map_or("none".to_string(), |q| format!("{q:.2} CPUs")),
        )
        .opt("base frequency", cpu.base_mhz, |m| format!("{m:.0} MHz"))
        .opt("max frequency", cpu.max_mhz, |m| format!("{m:.0} MHz"));
    if let Some(mhz) = cpu.measured_mhz {
        p.add(
            "measured clock",
            format!("{mhz:.0} MHz (no cpufreq: measured by hwbench)"),
        );
    }
    if let Some(mhz) = cpu.current_mhz {
        p.add("clock now (cpu MHz)", format!("{mhz:.0} MHz"));
    }
    if let Some(governor) = &cpu.governor {
        p.add("cpufreq governor", governor.clone());
    }
    match (cpu.fp32_peak_gflops, &cpu.fp32_peak_basis) {
        (Some(gflops), Some(basis)) => {
            p.add(
                "FP32 peak (theoretical)",
                format!("{gflops:.0} GFLOP/s: {basis}"),
            );
        }
        _ => {
            p.add(
                "FP32 peak (theoretical)",
                "unknown: no FMA width or clock known for this CPU",
            );
        }
    }
    let caches: Vec<String> = cpu
        .caches
        .iter()
        .map(|c| match c.instances {
            Some(n) => format!("{} {} KiB ×{n}", c.name, c.size_kib),
            None => format!("{} {} KiB", c.name, c.size_kib),
        })
        .collect();
    p.add(
        "caches",
        if caches.is_empty() {
            NA.to_string()
        } else {
            caches.join(", ")
        },
    )
    .add("ML features", cpu.features.join(" "))
    .add(
        "not present",
        if cpu.features_missing.is_empty() {
            "-".to_string()
        } else {
            cpu.features_missing.join(" ")
        },
    )
    .add(
        "x86-64 level",
        cpu.x86_64_level.clone().unwrap_or_else(|| "-".to_string()),
    )
    .add(
        "virtualization",
        if cpu.virtualization.is_empty() {
            "none detected".to_string()
        } else {
            cpu.virtualization.join(", ")
        },
    );
    p.finish()
}

fn memory_pairs(r: &InfoReport) -> Vec<(String, String)> {
    let m = &r.memory;
    let mut p = Pairs::new();
    p.opt("total", m.total_mib, gib)
        .opt("available", m.available_mib, gib)
        .add(
            "swap (free / total)",
            match (m.swap_free_mib, m.swap_total_mib) {
                (Some(free), Some(total)) => format!("{} / {}", gib(free), gib(total)),
                _ => NA.to_string(),
            },
        )
        .add(
            "cgroup limit",
            m.cgroup_limit_mib.map_or("none".to_string(), gib),
        );
    p.finish()
}

fn os_pairs(r: &InfoReport) -> Vec<(String, String)> {
    let mut p = Pairs::new();
    p.add("name", or_na(&r.os.long_name))
        .add("kernel", or_na(&r.os.kernel))
        .add("hostname", or_na(&r.os.hostname));
    p.finish()
}

fn driver_pairs(gpu: &GpuSection) -> Vec<(String, String)> {
    let mut p = Pairs::new();
    if let Some(message) = &gpu.message {
        p.add("status", message.clone());
    }
    if gpu.nvml_loaded {
        p.add("driver version", or_na(&gpu.driver_version))
            .add(
                "CUDA version the driver supports",
                or_na(&gpu.cuda_driver_version),
            )
            .add("NVML version", or_na(&gpu.nvml_version))
            .add("GPUs", gpu.devices.len().to_string());
    }
    p.finish()
}

fn gpu_pairs(g: &GpuReport) -> Vec<(String, String)> {
    let both = |a: Option<String>, b: Option<String>, sep: &str| match (a, b) {
        (None, None) => NA.to_string(),
        (a, b) => format!("{}{sep}{}", a.unwrap_or(NA.into()), b.unwrap_or(NA.into())),
    };
    let mhz = |v: Option<u32>| v.map(|v| format!("{v} MHz"));
    let watts = |v: Option<f64>| v.map(|v| format!("{v:.0} W"));
    let flag = |v: Option<bool>| v.map(|on| if on { "on" } else { "off" }.to_string());
    let mut p = Pairs::new();
    p.add("name", or_na(&g.name))
        .add("brand", or_na(&g.brand))
        .add("architecture", or_na(&g.architecture))
        .add("compute capability", or_na(&g.compute_capability))
        .add(
            "memory (used / free / total)",
            match g.memory_total_mib {
                Some(total) => format!(
                    "{} / {} / {} MiB",
                    g.memory_used_mib.map_or(NA.into(), |v| v.to_string()),
                    g.memory_free_mib.map_or(NA.into(), |v| v.to_string()),
                    total
                ),
                None => NA.to_string(),
            },
        )
        .add(
            "PCIe (current / max)",
            both(
                pcie(g.pcie_generation_current, g.pcie_width_current),
                pcie(g.pcie_generation_max, g.pcie_width_max),
                " / ",
            ),
        )
        .add("power draw", watts(g.power_draw_w).unwrap_or(NA.into()))
        .add(
            "power limit (current / default / enforced)",
            format!(
                "{} / {} / {}",
                watts(g.power_limit_w).unwrap_or(NA.into()),
                watts(g.power_limit_default_w).unwrap_or(NA.into()),
                watts(g.power_limit_enforced_w).unwrap_or(NA.into())
            ),
        )
        .add(
            "SM clock (current / max)",
            match g.sm_clock_default_app_mhz {
                Some(app) => format!(
                    "{} (default applications clock {app} MHz)",
                    both(mhz(g.sm_clock_mhz), mhz(g.sm_clock_max_mhz), " / ")
                ),
                None => both(mhz(g.sm_clock_mhz), mhz(g.sm_clock_max_mhz), " / "),
            },
        )
        .add(
            "memory clock (current / max)",
            both(mhz(g.memory_clock_mhz), mhz(g.memory_clock_max_mhz), " / "),
        )
        .opt("temperature", g.temperature_c, |t| format!("{t} °C"))
        .add(
            "persistence mode",
            flag(g.persistence_mode).unwrap_or(NA.into()),
        )
        .add(
            "MIG (current / pending)",
            both(flag(g.mig_enabled), flag(g.mig_pending), " / "),
        );
    for mig in &g.mig_devices {
        p.add(
            &format!("MIG device {}", mig.index),
            format!(
                "{}, {} MiB, {}",
                or_na(&mig.name),
                mig.memory_total_mib.map_or(NA.into(), |m| m.to_string()),
                or_na(&mig.uuid)
            ),
        );
    }
    p.add(
        "ECC (current / pending)",
        both(flag(g.ecc_enabled), flag(g.ecc_pending), " / "),
    )
    .add("PCI bus id", or_na(&g.pci_bus_id))
    .add("UUID", or_na(&g.uuid))
    .add("serial", or_na(&g.serial));
    // What the GPU can do at best, and its health: shown where NVML answered.
    if let Some(class) = &g.class {
        p.add(
            "class",
            match &g.architecture {
                Some(architecture) => format!("{class}, {architecture}"),
                None => class.clone(),
            },
        );
    }
    if let Some(cores) = g.cuda_cores {
        p.add(
            "CUDA cores / SMs",
            format!(
                "{cores} / {}",
                g.sm_count.map_or(NA.to_string(), |n| n.to_string())
            ),
        );
    }
    if let Some(bits) = g.memory_bus_width_bits {
        p.add("memory bus", format!("{bits} bits"));
    }
    if let Some(tflops) = g.fp32_peak_tflops {
        let bound = g
            .fp32_peak_basis
            .as_deref()
            .is_some_and(|basis| basis.contains("upper bound"));
        p.add(
            "FP32 peak (theoretical)",
            if bound {
                format!("{tflops:.1} TFLOP/s (upper bound: maximum clock, not the rated boost)")
            } else {
                format!("{tflops:.1} TFLOP/s")
            },
        );
    }
    if let Some(gbs) = g.memory_bandwidth_peak_gbs {
        p.add("memory bandwidth (theoretical)", format!("{gbs:.0} GB/s"));
    }
    if let Some(reasons) = &g.clocks_event_reasons {
        p.add("clocks event reasons", joined_or_none(reasons, ", "));
    }
    if let Some(errors) = g.ecc_uncorrected_volatile {
        p.add(
            "uncorrected ECC errors (since driver load)",
            errors.to_string(),
        );
    }
    if let Some(rows) = g.remapped_rows {
        p.add(
            "remapped rows",
            format!(
                "{} correctable, {} uncorrectable{}{}",
                rows.correctable,
                rows.uncorrectable,
                if rows.pending { ", one pending" } else { "" },
                if rows.failed {
                    ", a remapping failed"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(pending) = g.retired_pages_pending {
        p.add(
            "pages pending retirement",
            if pending { "yes" } else { "no" },
        );
    }
    if let Some(processes) = &g.processes {
        p.add("other processes", processes.len().to_string());
    }
    if let Some(cpus) = &g.cpu_affinity {
        p.add("CPUs close to it", cpus.clone());
    }
    if let Some(node) = g.numa_node {
        p.add(
            "NUMA node",
            match &g.numa_cpus {
                Some(cpus) => format!("{node} (CPUs {cpus})"),
                None => node.to_string(),
            },
        );
    }
    if let (Some(links), Some(active)) = (&g.nvlinks, g.active_nvlinks()) {
        let mut versions: Vec<u32> = links.iter().filter_map(|l| l.version).collect();
        versions.sort_unstable();
        versions.dedup();
        let version = match versions.as_slice() {
            [one] => format!(", NVLink {one}"),
            _ => String::new(),
        };
        let down = g.nvlinks_down();
        p.add(
            "NVLink",
            if down.is_empty() {
                format!("{active} links, all active{version}")
            } else {
                format!(
                    "{active} of {} links active{version}; down: {}",
                    links.len(),
                    down.join(", ")
                )
            },
        );
    }
    p.finish()
}

/// How each pair of GPUs reaches the other, one line per pair.
fn topology_pairs(gpus: &GpuSection) -> Vec<(String, String)> {
    let mut p = Pairs::new();
    for path in &gpus.topology {
        let (a, b) = path.gpus;
        p.add(
            &format!("GPU {a} ↔ GPU {b}"),
            if path.nvlinks > 0 {
                format!("{} ({} links)", path.path, path.nvlinks)
            } else {
                path.path.clone()
            },
        );
    }
    p.finish()
}

fn pcie(generation: Option<u32>, width: Option<u32>) -> Option<String> {
    match (generation, width) {
        (None, None) => None,
        (g, w) => Some(format!(
            "Gen{} x{}",
            g.map_or("?".into(), |g| g.to_string()),
            w.map_or("?".into(), |w| w.to_string())
        )),
    }
}

fn cuda_env_pairs(r: &InfoReport) -> Vec<(String, String)> {
    let e = &r.cuda_environment;
    let unset = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".to_string());
    let with_lib = |version: &Option<String>, lib: &Option<String>| match (version, lib) {
        (Some(v), Some(l)) => format!("{v} ({l})"),
        (Some(v), None) => v.clone(),
        _ => "not found".to_string(),
    };
    let mut p = Pairs::new();
    p.add("CUDA_VISIBLE_DEVICES", unset(&e.cuda_visible_devices))
        .add("CUDA_DEVICE_ORDER", unset(&e.cuda_device_order))
        .add(
            "CUDA runtime (libcudart)",
            with_lib(&e.cuda_runtime_version, &e.cuda_runtime_library),
        )
        .add("cuDNN", with_lib(&e.cudnn_version, &e.cudnn_library));
    p.finish()
}

/// The items joined by `separator`, or "none".
fn joined_or_none(items: &[String], separator: &str) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(separator)
    }
}

fn python_pairs(r: &InfoReport) -> Vec<(String, String)> {
    let py = &r.python;
    let why = |field: &str| {
        py.unavailable
            .get(field)
            .cloned()
            .unwrap_or_else(|| NA.to_string())
    };
    let or_why = |value: &Option<String>, field: &str| value.clone().unwrap_or_else(|| why(field));
    let mut p = Pairs::new();
    let Some(version) = &py.version else {
        p.add("Python", why("version"));
        return p.finish();
    };
    let interpreter = py.interpreter.as_deref().unwrap_or("python");
    let how = match py.source {
        Some(Source::Files) => ", on PATH, read from its files",
        _ => "",
    };
    p.add("Python", format!("{version} ({interpreter}{how})"))
        .add("torch", or_why(&py.torch, "torch"))
        .add(
            "torch built with CUDA",
            or_why(&py.torch_cuda, "torch_cuda"),
        )
        .add("cuDNN (torch's)", or_why(&py.cudnn, "cudnn"))
        .add(
            "torch can use CUDA",
            match (py.torch_cuda_available, py.torch_cuda_devices) {
                (Some(true), Some(n)) => format!("yes, {n} device(s)"),
                (Some(true), None) => "yes".to_string(),
                (Some(false), _) => "no (torch.cuda.is_available() is False)".to_string(),
                (None, _) => why("torch_cuda_available"),
            },
        )
        .add("numpy", or_why(&py.numpy, "numpy"));
    let wheels: Vec<String> = py
        .cuda_wheels
        .iter()
        .flatten()
        .map(|w| format!("{} {}", w.package, w.version))
        .collect();
    p.add("NVIDIA pip wheels", joined_or_none(&wheels, "; "));
    p.finish()
}

fn build_pairs(r: &InfoReport) -> Vec<(String, String)> {
    let mut p = Pairs::new();
    p.add("hwbench", r.build.hwbench_version.clone())
        .add("target", r.build.target.clone())
        .add("CUDA training", cuda_training(r));
    if let Some(build) = &r.build.cuda_companion.build
        && !build.libraries.is_empty()
    {
        let libraries: Vec<String> = build
            .libraries
            .iter()
            .map(|l| {
                format!(
                    "{} {} ({})",
                    l.file,
                    l.version.as_deref().unwrap_or("version unknown"),
                    if l.bundled {
                        "bundled"
                    } else {
                        "the machine's"
                    }
                )
            })
            .collect();
        p.add("CUDA libraries (companion)", libraries.join(", "));
    }
    if !r.build.gpus_not_supported.is_empty() {
        p.add(
            "GPUs this build cannot run on",
            r.build.gpus_not_supported.join("; "),
        );
    }
    p.finish()
}
