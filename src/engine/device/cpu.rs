//! The CPU as a training device: candle's CPU backend limited to a number of threads, in a
//! `hwbench worker` process of its own, so that each thread count has its own thread pools and its
//! own peak memory.

use std::path::PathBuf;

pub const MEMORY_KIND: &str = "peak RSS of the worker process";

pub fn label(threads: usize) -> String {
    format!("cpu×{threads}")
}

/// candle and rayon size their thread pools from the environment when they first start them, so
/// the worker sets it before its first candle operation; candle and the fused kernels also read it
/// on every parallel call, which lets the benchmarks change it between benchmarks.
pub fn limit_threads(threads: usize) {
    for variable in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        // SAFETY: called where nothing reads the environment concurrently: at worker start-up,
        // before the worker starts any thread, and in the benchmarks between two benchmarks
        // (criterion runs them one at a time on the main thread; rayon's workers do not read it).
        unsafe { std::env::set_var(variable, threads.to_string()) };
    }
}

/// Keeps freed memory in the process instead of handing it back to the kernel after every large
/// tensor: without it, each epoch of a large model pays page faults for memory it freed an
/// operation earlier (a third of an epoch's time at 128:448:112:2560, measured). glibc caps the
/// threshold under which allocations come from the heap at 32 MiB; larger tensors are mapped
/// afresh, a cost that is small next to the arithmetic on them.
pub fn keep_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator settings; called at worker start-up, before any
    // other thread allocates.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
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

/// Available memory (/proc/meminfo's MemAvailable), within the cgroup's limit.
pub fn free_memory_mib() -> Option<f64> {
    let memory = crate::info::system::probe_memory(&crate::info::Root::real());
    let available = memory.available_mib?;
    let free = memory
        .cgroup_limit_mib
        .map_or(available, |limit| available.min(limit));
    Some(free as f64)
}

/// CPU columns run in this very executable (`hwbench worker`).
pub fn worker_program() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the hwbench executable: {e}"))
}
