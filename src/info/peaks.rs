//! What the hardware can do at best: each GPU's theoretical FP32 throughput and memory bandwidth,
//! its SM count and class, and the usable CPU cores' FP32 throughput. A scaling sweep compares
//! what training reaches with these.

use super::cpu::CpuReport;
use super::gpu::GpuReport;
use super::gpu_model::Model;

/// CUDA cores per streaming multiprocessor, by compute capability.
fn cores_per_sm(major: u32, minor: u32) -> Option<u32> {
    Some(match (major, minor) {
        (5, _) => 128,
        (6, 0) => 64,
        (6, _) => 128,
        (7, _) => 64,
        (8, 0) => 64,
        (8, _) => 128,
        (9, _) | (10, _) | (11, _) | (12, _) => 128,
        _ => return None,
    })
}

/// Fills a GPU's SM count, peaks and class from what NVML reported; a peak it cannot reckon says
/// why in `unavailable`.
pub fn fill_gpu(gpu: &mut GpuReport) {
    let cc = gpu.compute_capability.as_deref().and_then(|cc| {
        let (major, minor) = cc.split_once('.')?;
        Some((
            major.parse().ok()?,
            minor.trim_end_matches('a').parse().ok()?,
        ))
    });
    let per_sm = cc.and_then(|(major, minor)| cores_per_sm(major, minor));
    if let (Some(cores), Some(per_sm)) = (gpu.cuda_cores, per_sm) {
        gpu.sm_count = Some(cores / per_sm);
    }
    let model = gpu.name.as_deref().map(Model::of);
    gpu.class = model
        .as_ref()
        .and_then(|m| m.class(gpu.brand.as_deref()))
        .map(str::to_string);
    // A GPU of an architecture and a name hwbench has never seen: its factors would be guesses.
    if gpu.class.is_none() && per_sm.is_none() {
        let reason = format!(
            "unknown GPU: compute capability {} and a name hwbench does not know, so no peak is reckoned",
            gpu.compute_capability.as_deref().unwrap_or("unknown")
        );
        why_not(gpu, "fp32_peak_tflops", reason.clone());
        why_not(gpu, "memory_bandwidth_peak_gbs", reason);
        return;
    }
    match fp32_peak(gpu, model.as_ref()) {
        Ok((tflops, basis)) => {
            gpu.fp32_peak_tflops = Some(tflops);
            gpu.fp32_peak_basis = Some(basis);
        }
        Err(reason) => why_not(gpu, "fp32_peak_tflops", reason),
    }
    match (gpu.memory_bus_width_bits, gpu.memory_clock_max_mhz) {
        (Some(bits), Some(mhz)) => {
            gpu.memory_bandwidth_peak_gbs =
                Some(f64::from(bits) * f64::from(mhz) * 2.0 / 8.0 / 1e3);
        }
        _ => why_not(
            gpu,
            "memory_bandwidth_peak_gbs",
            "NVML gave no memory bus size or maximum memory clock".to_string(),
        ),
    }
}

/// Says why `field` is null (unless NVML already said).
fn why_not(gpu: &mut GpuReport, field: &str, reason: String) {
    gpu.unavailable.entry(field.to_string()).or_insert(reason);
}

/// A GPU's FP32 peak in TFLOP/s — CUDA cores × 2 FLOP per cycle (one FMA) × the rated boost
/// clock — with its basis. The clock, first that applies:
/// 1. the model's rated boost (published figures), where hwbench knows the model;
/// 2. on data-centre boards NVML's maximum, which is their boost clock (their default
///    applications clock can be the base clock instead: 585 MHz on a T4 that boosts to 1590);
/// 3. NVML's default applications clock, the rated boost on the RTX workstation boards that
///    have one (their maximum is the top of a clock table);
/// 4. NVML's maximum, as an upper bound, and the basis says so.
fn fp32_peak(gpu: &GpuReport, model: Option<&Model>) -> Result<(f64, String), String> {
    let cores = gpu.cuda_cores.ok_or("NVML gave no CUDA core count")?;
    let max = gpu.sm_clock_max_mhz;
    let data_centre = gpu.class.as_deref() == Some("data centre");
    let default_app = gpu.sm_clock_default_app_mhz.filter(|&mhz| mhz > 0);
    let (mhz, clock) = match (model.and_then(Model::rated_boost_mhz), max) {
        (Some(rated), _) => (rated, "rated boost clock of this model"),
        (None, Some(max)) if data_centre => (
            max,
            "maximum SM clock, NVML: the boost clock on data-centre boards",
        ),
        (None, _) if let Some(app) = default_app => (
            app,
            "default applications clock, NVML: the rated boost on workstation boards",
        ),
        (None, Some(max)) => (
            max,
            "upper bound: NVML's maximum SM clock, not the rated boost",
        ),
        (None, None) => return Err("NVML gave no maximum SM clock".to_string()),
    };
    Ok((
        f64::from(cores) * 2.0 * f64::from(mhz) / 1e6,
        format!("{cores} CUDA cores × 2 FLOP per cycle × {mhz} MHz ({clock})"),
    ))
}

/// A GPU's FP32 peak in GFLOP/s, with how it was reckoned (for a column's share of it).
pub fn gpu_peak(gpu: &GpuReport) -> Option<(f64, String)> {
    Some((gpu.fp32_peak_tflops? * 1e3, gpu.fp32_peak_basis.clone()?))
}

/// What kind of machine a GPU is made for, from its name (read as a model name) and brand.
pub fn class(name: &str, brand: Option<&str>) -> Option<&'static str> {
    Model::of(name).class(brand)
}

/// FP32 floating-point operations one core does per cycle at most (its FMA units × lanes × 2),
/// and why, by microarchitecture.
pub fn fp32_per_cycle(microarchitecture: &str) -> Option<(u32, &'static str)> {
    let m = microarchitecture;
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| m.starts_with(p));
    Some(if starts(&["Zen 5 (Strix", "Zen 5 (Krackan"]) {
        (32, "two 256-bit FMA units")
    } else if starts(&["Zen 5"]) {
        (64, "two 512-bit FMA units")
    } else if starts(&["Zen 4", "Zen 3", "Zen 2"]) {
        (32, "two 256-bit FMA units")
    } else if starts(&["Zen"]) {
        (16, "two 128-bit FMA units")
    } else if starts(&[
        "Skylake-SP",
        "Cascade Lake",
        "Cooper Lake",
        "Ice Lake-SP",
        "Sapphire Rapids",
        "Emerald Rapids",
        "Granite Rapids",
    ]) {
        (64, "two 512-bit FMA units (Xeon Gold and Platinum)")
    } else if starts(&["Ice Lake", "Tiger Lake", "Rocket Lake"]) {
        (32, "one 512-bit FMA unit")
    } else if starts(&[
        "Haswell",
        "Broadwell",
        "Skylake",
        "Kaby Lake",
        "Comet Lake",
        "Cannon Lake",
        "Alder Lake",
        "Raptor Lake",
        "Meteor Lake",
        "Arrow Lake",
        "Lunar Lake",
        "Panther Lake",
    ]) && !m.starts_with("Alder Lake-N")
    {
        (32, "two 256-bit FMA units")
    } else if starts(&["Sandy Bridge", "Ivy Bridge"]) {
        (16, "a 256-bit add and a 256-bit multiply unit")
    } else if starts(&["A64FX"]) {
        (64, "two 512-bit SVE FMA units")
    } else if starts(&["Neoverse V", "Cortex-X", "Apple M"])
        && !m.contains("cestorm")
        && !m.contains("Blizzard")
    {
        (32, "four 128-bit FMA units")
    } else if starts(&[
        "Neoverse N",
        "Cortex-A76",
        "Cortex-A77",
        "Cortex-A78",
        "Cortex-A71",
        "Cortex-A72",
    ]) {
        (16, "two 128-bit FMA units")
    } else {
        return None;
    })
}

/// Fills the usable cores' FP32 peak where the microarchitecture's FMA width and a clock are
/// known.
pub fn fill_cpu(cpu: &mut CpuReport) {
    // Hyper-threads share a core's FMA units: count cores, not threads.
    let cores = match (cpu.usable_cpus, cpu.physical_cores) {
        (Some(usable), Some(physical)) => usable.min(physical),
        (Some(usable), None) => usable,
        _ => return,
    };
    if let Some((gflops, basis)) = cpu_peak(cpu, cores) {
        cpu.fp32_peak_gflops = Some(gflops);
        cpu.fp32_peak_basis = Some(basis);
    }
}

/// The FP32 peak of the cores `threads` threads can keep busy (at most one thread per usable
/// core counts), in GFLOP/s, with how it was reckoned.
pub fn cpu_threads_peak(cpu: &CpuReport, threads: usize) -> Option<(f64, String)> {
    let usable = cpu.usable_cpus?;
    let cores = cpu.physical_cores.map_or(usable, |p| usable.min(p));
    cpu_peak(cpu, threads.min(cores))
}

fn cpu_peak(cpu: &CpuReport, cores: usize) -> Option<(f64, String)> {
    let (per_cycle, units) = cpu.microarchitecture.as_deref().and_then(fp32_per_cycle)?;
    // The highest clock the cores really run at: cpufreq's maximum, else the measured one (in a
    // virtual machine /proc/cpuinfo's and the name's are the nominal clock, below the boost).
    let (mhz, clock) = match (cpu.max_mhz, cpu.measured_mhz, cpu.base_mhz, cpu.current_mhz) {
        (Some(max), ..) => (max, "maximum clock (cpufreq)"),
        (None, Some(measured), ..) => (measured, "clock measured by hwbench"),
        (None, None, Some(base), _) => (base, "base clock"),
        (None, None, None, Some(now)) => (now, "clock /proc/cpuinfo reports (cpu MHz)"),
        _ => return None,
    };
    let gflops = cores as f64 * f64::from(per_cycle) * mhz / 1e3;
    let basis = format!(
        "{cores} core{} × {per_cycle} FP32 FLOP per cycle ({units}) × {:.2} GHz ({clock})",
        if cores == 1 { "" } else { "s" },
        mhz / 1e3
    );
    Some((gflops, basis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str, cc: &str, cores: u32, sm_mhz: u32, bits: u32, mem_mhz: u32) -> GpuReport {
        let mut gpu = GpuReport {
            name: Some(name.to_string()),
            compute_capability: Some(cc.to_string()),
            cuda_cores: Some(cores),
            sm_clock_max_mhz: Some(sm_mhz),
            memory_bus_width_bits: Some(bits),
            memory_clock_max_mhz: Some(mem_mhz),
            ..GpuReport::default()
        };
        fill_gpu(&mut gpu);
        gpu
    }

    #[test]
    fn gpu_peaks_match_published_figures() {
        // H100 SXM: 67 TFLOPS FP32, 3.35 TB/s.
        let h100 = gpu("NVIDIA H100 80GB HBM3", "9.0", 16896, 1980, 5120, 2619);
        assert!((h100.fp32_peak_tflops.unwrap() - 66.9).abs() < 0.1);
        assert!((h100.memory_bandwidth_peak_gbs.unwrap() - 3352.0).abs() < 1.0);
        assert_eq!(h100.sm_count, Some(132));
        assert_eq!(h100.class.as_deref(), Some("data centre"));
        // A100 80GB SXM: 19.5 TFLOPS FP32, 2039 GB/s.
        let a100 = gpu("NVIDIA A100-SXM4-80GB", "8.0", 6912, 1410, 5120, 1593);
        assert!((a100.fp32_peak_tflops.unwrap() - 19.5).abs() < 0.05);
        assert!((a100.memory_bandwidth_peak_gbs.unwrap() - 2039.0).abs() < 1.0);
        assert_eq!(a100.sm_count, Some(108));
    }

    #[test]
    fn every_board_gets_its_published_fp32_peak_from_what_nvml_reports() {
        // (name, compute capability, CUDA cores, NVML's maximum SM clock as NVML reports it,
        // published FP32 TFLOP/s). On GeForce and RTX workstation boards NVML's maximum is the
        // top of the clock table (3105 MHz on a 4090), far above the rated boost the published
        // peak uses.
        for (name, cc, cores, max_mhz, published) in [
            ("NVIDIA GeForce RTX 3090", "8.6", 10496, 2100, 35.6),
            ("NVIDIA GeForce RTX 4090", "8.9", 16384, 3105, 82.6),
            ("NVIDIA GeForce RTX 5090", "12.0", 21760, 3090, 104.8),
            ("NVIDIA RTX 6000 Ada Generation", "8.9", 18176, 3105, 91.1),
            ("NVIDIA L4", "8.9", 7424, 2040, 30.3),
            ("NVIDIA A100-SXM4-80GB", "8.0", 6912, 1410, 19.5),
            ("NVIDIA H100 80GB HBM3", "9.0", 16896, 1980, 66.9),
            ("NVIDIA H200", "9.0", 16896, 1980, 66.9),
        ] {
            let board = gpu(name, cc, cores, max_mhz, 384, 10501);
            let tflops = board.fp32_peak_tflops.unwrap();
            assert!(
                (tflops / published - 1.0).abs() < 0.05,
                "{name}: {tflops:.1} TFLOP/s, published {published}"
            );
        }
        // A board hwbench has no rated clock for says its peak is an upper bound …
        let other = gpu("NVIDIA RTX A1000", "8.6", 2304, 2100, 128, 6001);
        assert!(
            other
                .fp32_peak_basis
                .as_deref()
                .unwrap()
                .contains("upper bound: NVML's maximum SM clock")
        );
        // … unless NVML gives its default applications clock, the rated boost (1.46 GHz on an
        // RTX A1000: 6.7 TFLOP/s published).
        let mut with_app_clock = GpuReport {
            sm_clock_default_app_mhz: Some(1460),
            ..other.clone()
        };
        with_app_clock.fp32_peak_tflops = None;
        fill_gpu(&mut with_app_clock);
        let tflops = with_app_clock.fp32_peak_tflops.unwrap();
        assert!((tflops / 6.7 - 1.0).abs() < 0.05, "{tflops}");
        assert!(
            with_app_clock
                .fp32_peak_basis
                .unwrap()
                .contains("default applications clock")
        );
        // A data-centre board's default applications clock can be its base clock: not used.
        let mut t4_like = gpu("NVIDIA A2", "8.6", 1280, 1770, 128, 6251);
        t4_like.sm_clock_default_app_mhz = Some(585);
        fill_gpu(&mut t4_like);
        assert!(!t4_like.fp32_peak_basis.unwrap().contains("applications"));
    }

    #[test]
    fn an_unknown_gpu_gets_no_peak_and_says_why() {
        let future = gpu("NVIDIA X9000", "13.0", 30000, 3000, 512, 12000);
        assert_eq!(
            (future.fp32_peak_tflops, future.memory_bandwidth_peak_gbs),
            (None, None)
        );
        assert_eq!(future.class, None);
        assert!(future.unavailable["fp32_peak_tflops"].starts_with("unknown GPU"));
        // A known board NVML said too little about: each null peak has its reason.
        let mut bare = GpuReport {
            name: Some("NVIDIA L4".to_string()),
            compute_capability: Some("8.9".to_string()),
            ..GpuReport::default()
        };
        fill_gpu(&mut bare);
        assert!(bare.unavailable["fp32_peak_tflops"].contains("CUDA core count"));
        assert!(bare.unavailable["memory_bandwidth_peak_gbs"].contains("memory bus size"));
    }

    #[test]
    fn gpu_classes() {
        assert_eq!(
            class("NVIDIA RTX A6000", Some("NVIDIA RTX (workstation)")),
            Some("workstation")
        );
        assert_eq!(
            class("NVIDIA GeForce RTX 4070 Laptop GPU", None),
            Some("laptop")
        );
        assert_eq!(class("Orin (nvgpu)", None), Some("embedded"));
        assert_eq!(
            class("Tesla T4", Some("Tesla (data centre)")),
            Some("data centre")
        );
        assert_eq!(class("Mystery GPU", None), None);
    }

    #[test]
    fn cpu_peak_from_cores_fma_width_and_clock() {
        let mut cpu = CpuReport {
            microarchitecture: Some("Cascade Lake".to_string()),
            physical_cores: Some(2),
            usable_cpus: Some(2),
            base_mhz: Some(2500.0),
            ..CpuReport::default()
        };
        fill_cpu(&mut cpu);
        assert_eq!(cpu.fp32_peak_gflops, Some(320.0));
        assert!(
            cpu.fp32_peak_basis
                .unwrap()
                .contains("2 cores × 64 FP32 FLOP per cycle")
        );
        // Hyper-threads do not add FMA units; an unknown clock gives no peak.
        let mut smt = CpuReport {
            microarchitecture: Some("Zen 4 (Genoa)".to_string()),
            physical_cores: Some(8),
            usable_cpus: Some(16),
            max_mhz: Some(3700.0),
            ..CpuReport::default()
        };
        fill_cpu(&mut smt);
        assert!((smt.fp32_peak_gflops.unwrap() - 947.2).abs() < 1e-9);
        let mut unknown = CpuReport {
            microarchitecture: Some("Zen 4 (Genoa)".to_string()),
            usable_cpus: Some(2),
            ..CpuReport::default()
        };
        fill_cpu(&mut unknown);
        assert_eq!(unknown.fp32_peak_gflops, None);
    }
}
