//! The CPU as a training device: candle's CPU backend limited to a number of threads, in a
//! `hwbench worker` process of its own, so that each thread count has its own thread pools and its
//! own peak memory.

use std::path::PathBuf;

pub const MEMORY_KIND: &str = "peak RSS of the worker process";

pub fn label(threads: usize) -> String {
    format!("cpu×{threads}")
}

/// candle and rayon size their thread pools from the environment when they first start them, so
/// the worker sets it before its first candle operation.
pub fn limit_threads(threads: usize) {
    for variable in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        // SAFETY: called once at worker start-up, before the worker starts any thread, so nothing
        // can read the environment concurrently.
        unsafe { std::env::set_var(variable, threads.to_string()) };
    }
}

/// The CPU model, as /proc/cpuinfo names it.
pub fn name() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    crate::info::cpu::from_cpuinfo(&cpuinfo).model_name
}

/// The worker process's peak resident set.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU columns run in this very executable (`hwbench worker`).
pub fn worker_program() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the hwbench executable: {e}"))
}
