//! Which vector instructions the fused CPU kernels use, chosen at run time: one binary runs on
//! any x86-64 machine and uses AVX-512 where the CPU has it, AVX2 with FMA where it has that, and
//! the `gemm` crate's own choice elsewhere (other architectures, or an x86-64 CPU without FMA).
//!
//! Both the matrix products (gemm's microkernels for that instruction set, called directly, so
//! that the choice is hwbench's and a benchmark can force one) and hwbench's own loops (compiled
//! once per instruction set by [`multiversioned`]) follow the same choice.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

/// An instruction set the fused kernels can be run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isa {
    /// 512-bit vectors (x86-64-v4: AVX-512 F, BW, CD, DQ, VL).
    Avx512,
    /// 256-bit vectors with fused multiply–add (x86-64-v3).
    Avx2,
    /// Whatever the `gemm` crate picks, and the compiler's baseline for the element-wise passes.
    Baseline,
}

impl Isa {
    /// As reports and benchmarks name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "AVX-512",
            Self::Avx2 => "AVX2",
            Self::Baseline => "baseline",
        }
    }

    /// Whether this CPU can run it.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => gemm_common::simd::V4::try_new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => gemm_common::simd::V3::try_new().is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512 | Self::Avx2 => false,
            Self::Baseline => true,
        }
    }

    /// The widest this CPU has.
    pub fn widest() -> Self {
        [Self::Avx512, Self::Avx2]
            .into_iter()
            .find(|isa| isa.available())
            .unwrap_or(Self::Baseline)
    }

    fn code(self) -> u8 {
        match self {
            Self::Avx512 => 1,
            Self::Avx2 => 2,
            Self::Baseline => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [Self::Avx512, Self::Avx2, Self::Baseline]
            .into_iter()
            .find(|isa| isa.code() == code)
    }
}

/// 0 until chosen: then [`Isa::widest`] unless [`force`] chose another.
static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// The instruction set the kernels use in this process.
pub fn chosen() -> Isa {
    Isa::from_code(CHOSEN.load(Ordering::Relaxed)).unwrap_or_else(|| {
        let isa = Isa::widest();
        CHOSEN.store(isa.code(), Ordering::Relaxed);
        isa
    })
}

/// Makes the kernels use `isa` from now on (benchmarks compare one with another). Refuses one
/// this CPU cannot run.
pub fn force(isa: Isa) -> Result<(), String> {
    if !isa.available() {
        return Err(format!("this CPU has no {} instructions", isa.name()));
    }
    CHOSEN.store(isa.code(), Ordering::Relaxed);
    Ok(())
}

/// Defines a function compiled three times — for AVX-512, for AVX2 with FMA, and for the
/// compiler's baseline — that runs the one for the chosen instruction set, so that the compiler
/// vectorises its loops with the widest vectors the CPU has. (A closure handed to a function
/// with those target features is not reliably inlined into it, and then runs with the baseline's
/// 128-bit vectors: measured, the course's small products took twice as long.)
macro_rules! multiversioned {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma")]
            fn avx512($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            match $crate::engine::fused::isa::chosen() {
                // SAFETY: an instruction set is chosen only where the CPU has it.
                #[cfg(target_arch = "x86_64")]
                $crate::engine::fused::isa::Isa::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::engine::fused::isa::Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use multiversioned;

/// `dst = lhs · rhs` (`dst` row-major with row stride `n`; `lhs` m × k and `rhs` k × n given by
/// their column and row strides), on this thread, with the chosen instruction set's microkernels.
///
/// # Safety
/// `lhs` and `rhs` must point to matrices of those shapes and strides, and `dst` must have room
/// for m × n values that no one else uses meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(
    (m, k, n): (usize, usize, usize),
    dst: *mut f32,
    lhs: *const f32,
    (lhs_cs, lhs_rs): (isize, isize),
    rhs: *const f32,
    (rhs_cs, rhs_rs): (isize, isize),
) {
    // gemm's microkernels fill column-major outputs: a row-major product is computed as its
    // transpose, rhsᵀ · lhsᵀ, as the `gemm` crate itself does.
    #[cfg(target_arch = "x86_64")]
    macro_rules! with_kernels {
        ($simd:expr, $kernels:ident, $lanes:expr) => {{
            use gemm_f32::microkernel::$kernels::f32 as kernels;
            // SAFETY: the caller's promises; the transposed problem reads and writes the same
            // elements.
            unsafe {
                gemm_common::gemm::gemm_basic_generic::<
                    _,
                    f32,
                    $lanes,
                    { kernels::MR_DIV_N * $lanes },
                    { kernels::NR },
                    { kernels::MR_DIV_N },
                    { kernels::H_M },
                    { kernels::H_N },
                >(
                    $simd,
                    n,
                    m,
                    k,
                    dst,
                    n as isize,
                    1,
                    false,
                    rhs,
                    rhs_rs,
                    rhs_cs,
                    lhs,
                    lhs_rs,
                    lhs_cs,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    |a, b, c| a * b + c,
                    &kernels::UKR,
                    &kernels::H_UKR,
                    false,
                    gemm_common::Parallelism::None,
                )
            }
        }};
    }
    match chosen() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            if let Some(simd) = gemm_common::simd::V4::try_new() {
                return with_kernels!(simd, avx512f, 16);
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            if let Some(simd) = gemm_common::simd::V3::try_new() {
                return with_kernels!(simd, fma, 8);
            }
        }
        _ => {}
    }
    // SAFETY: the caller's promises. With `read_dst` false gemm writes every destination element
    // and reads none.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            false,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set this CPU has computes the same product as a plain loop, for shapes
    /// that exercise the microkernels' edges (odd sizes, one row, one column, a long sum).
    #[test]
    fn every_available_instruction_set_multiplies_right() {
        let before = chosen();
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (17, 33, 9), (1, 300, 1), (40, 2, 31)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
            let mut expected = vec![0f32; m * n];
            for i in 0..m {
                for j in 0..n {
                    expected[i * n + j] = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
                }
            }
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Baseline] {
                if force(isa).is_err() {
                    continue;
                }
                let mut out = vec![f32::NAN; m * n];
                // SAFETY: row-major a (m × k) and b (k × n), out m × n.
                unsafe {
                    gemm(
                        (m, k, n),
                        out.as_mut_ptr(),
                        a.as_ptr(),
                        (1, k as isize),
                        b.as_ptr(),
                        (1, n as isize),
                    )
                };
                // Small integers and halves: every order of summation is exact.
                assert_eq!(out, expected, "{} at {m}×{k}×{n}", isa.name());
            }
        }
        force(before).unwrap();
    }

    #[test]
    fn an_instruction_set_the_cpu_lacks_is_refused() {
        assert!(Isa::Baseline.available());
        if !Isa::Avx512.available() {
            assert!(force(Isa::Avx512).is_err());
        }
        assert!(Isa::widest().available());
    }
}
