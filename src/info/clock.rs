//! The clock a core really runs at, measured where the kernel does not say (no cpufreq, as in
//! most virtual machines): a chain of dependent integer additions — one per cycle on every x86-64
//! core of the last twenty years — timed over about 30 µs (a hundred thousand additions), the best of five tries (a
//! preempted try only reads slower). The FP32 peak is reckoned from it, so that a measured share
//! of peak cannot pass 100% but by measurement error.

/// The measured clock in MHz, where it can be measured (x86-64).
pub fn measured_mhz() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        (0..5)
            .filter_map(|_| one_try())
            .max_by(f64::total_cmp)
            .filter(|mhz| (100.0..20_000.0).contains(mhz))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn one_try() -> Option<f64> {
    /// Additions per loop iteration, written out in the assembly below.
    const ADDS: u64 = 100;
    const ITERATIONS: u64 = 1_000;
    let mut x: u64 = 0;
    let mut n: u64 = ITERATIONS;
    let started = std::time::Instant::now();
    // SAFETY: registers only, no memory or stack; every register used is declared.
    unsafe {
        std::arch::asm!(
            "2:",
            ".rept 100",
            "add {x}, 1",
            ".endr",
            "dec {n}",
            "jnz 2b",
            x = inout(reg) x,
            n = inout(reg) n,
            options(nomem, nostack),
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    (x == ADDS * ITERATIONS && n == 0 && seconds > 0.0)
        .then(|| (ADDS * ITERATIONS) as f64 / seconds / 1e6)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_measured_clock_is_a_cpu_clock() {
        // Any CPU this runs on clocks between 0.5 and 7 GHz; a wrong count or unit would not.
        let mhz = super::measured_mhz().expect("measurable on x86-64");
        assert!((500.0..7_000.0).contains(&mhz), "{mhz} MHz");
    }
}
