//! /proc/cpuinfo parsing on recorded files from three kinds of CPU.

use hwbench::info::cpu::{
    from_cpuinfo, mhz_in_name, parse_cache_size, parse_cpu_list, parse_cpu_max,
};

fn parse(name: &str) -> hwbench::info::cpu::CpuReport {
    from_cpuinfo(
        &std::fs::read_to_string(crate::util::fixture(&format!("cpuinfo/{name}"))).unwrap(),
    )
}

#[test]
fn intel_cascade_lake_without_smt() {
    let cpu = parse("xeon_cascade_lake_2core.txt");
    assert_eq!(cpu.vendor.as_deref(), Some("GenuineIntel"));
    assert_eq!(cpu.microarchitecture.as_deref(), Some("Cascade Lake"));
    assert_eq!(
        (cpu.sockets, cpu.physical_cores, cpu.logical_cpus),
        (Some(1), Some(2), Some(2))
    );
    assert_eq!(cpu.smt_enabled, Some(false));
    assert_eq!(cpu.x86_64_level.as_deref(), Some("x86-64-v4"));
    assert!(cpu.features.iter().any(|f| f == "avx512_vnni"));
    assert!(cpu.features_missing.iter().any(|f| f == "amx_tile"));
}

#[test]
fn amd_genoa_with_smt() {
    let cpu = parse("amd_genoa_smt.txt");
    assert!(cpu.microarchitecture.as_deref().unwrap().contains("Zen 4"));
    assert_eq!((cpu.physical_cores, cpu.logical_cpus), (Some(2), Some(4)));
    assert_eq!(cpu.smt_enabled, Some(true));
    assert!(cpu.features.iter().any(|f| f == "avx512_bf16"));
}

#[test]
fn arm_neoverse_v2() {
    let cpu = parse("arm_neoverse_v2.txt");
    assert_eq!(cpu.vendor.as_deref(), Some("Arm"));
    assert_eq!(cpu.microarchitecture.as_deref(), Some("Neoverse V2"));
    assert_eq!(cpu.logical_cpus, Some(4));
    for feature in ["neon", "sve", "sve2", "bf16", "i8mm"] {
        assert!(cpu.features.iter().any(|f| f == feature), "{feature}");
    }
    assert_eq!(cpu.x86_64_level, None);
}

#[test]
fn small_parsers() {
    assert_eq!(parse_cpu_list("0-3,8,10-11"), vec![0, 1, 2, 3, 8, 10, 11]);
    // Hostile lists: a range to the end of u64 (once "capacity overflow"), a billion CPUs (once
    // 24 GB), a reversed range, garbage. Nothing past MAX_CPU is read, nothing panics.
    let huge = parse_cpu_list("0-18446744073709551615");
    assert_eq!(huge.len(), hwbench::info::cpu::MAX_CPU);
    assert_eq!(parse_cpu_list("1000000000-1999999999,5"), vec![5]);
    assert_eq!(parse_cpu_list("7-3,x-2,3-,,4"), vec![4]);
    assert_eq!(
        parse_cpu_list(&"0-65535,".repeat(1000)).len(),
        hwbench::info::cpu::MAX_CPU
    );
    assert_eq!(parse_cache_size("32K"), Some(32));
    assert_eq!(parse_cache_size("32M"), Some(32 * 1024));
    assert_eq!(parse_cpu_max("max 100000\n"), None);
    assert_eq!(parse_cpu_max("250000 100000\n"), Some(2.5));
    assert_eq!(
        mhz_in_name("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"),
        Some(2400.0)
    );
    assert_eq!(mhz_in_name("AMD EPYC 9654 96-Core Processor"), None);
    assert_eq!(
        hwbench::info::cuda_libs::cudnn_version_string(90100),
        "9.1.0"
    );
    assert_eq!(
        hwbench::info::cuda_libs::cudnn_version_string(8902),
        "8.9.2"
    );
}
