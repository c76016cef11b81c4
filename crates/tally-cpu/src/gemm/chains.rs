//! Register-resident instruction chains: independent accumulators fed by one instruction
//! over and over, no memory traffic, so their rate is the core's arithmetic ceiling for
//! that instruction. `tally calibrate` reports them (`tally-hw`); [`super::detect_bf16`]
//! races the two AVX-512 ones to choose the bf16 GEMM path that is faster on this host.

use super::Isa;

/// Independent accumulators per chain run: enough to cover latency × issue width.
pub const CHAINS: usize = 12;

/// FPO one iteration of [`dot_chains_bf16`] performs: `CHAINS` `vdpbf16ps`, 64 FPO each
/// (16 lanes × 2 bf16 products + 2 adds).
pub const DOT_BF16_FPO_PER_ITER: f64 = (CHAINS * 64) as f64;

/// One body, stamped out per instruction set so each copy compiles with its features.
/// The flat array of `N` accumulators is what the compiler keeps in registers.
macro_rules! fma_chains {
    ($(#[$attr:meta])* $name:ident, $n:expr, $fused:expr) => {
        $(#[$attr])*
        fn $name(iters: u64) -> f32 {
            let mut acc = [1.0f32; $n];
            let (a, b) = (std::hint::black_box(0.999_999f32), std::hint::black_box(1e-7f32));
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = if $fused { v.mul_add(a, b) } else { *v * a + b };
                }
            }
            acc.iter().sum()
        }
    };
}

fma_chains!(chains_portable, 4 * CHAINS, false);
fma_chains!(
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    chains_avx512,
    16 * CHAINS,
    true
);
fma_chains!(
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    chains_avx2,
    8 * CHAINS,
    true
);

/// `iters` rounds of `CHAINS` f32 vector FMAs of `isa` (`isa.lanes()` lanes each; the
/// portable one a multiply and an add); returns a sum to keep. `isa` must come from
/// [`Isa::available`] (which checked its features), as [`super::detect`]'s does.
pub fn run_chains(isa: Isa, iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: `Isa::available` offers Avx512 only where it found AVX-512F and FMA.
        Isa::Avx512 => return unsafe { chains_avx512(iters) },
        // SAFETY: as above, Avx2 only where AVX2 and FMA were found.
        Isa::Avx2 => return unsafe { chains_avx2(iters) },
        Isa::Portable => {}
    }
    let _ = isa;
    chains_portable(iters)
}

/// FPO one iteration of [`run_chains`] performs on `isa`: `CHAINS` vectors, 2 per lane.
pub fn fma_fpo_per_iter(isa: Isa) -> f64 {
    (2 * CHAINS * isa.lanes()) as f64
}

/// `iters` rounds of `CHAINS` `vdpbf16ps` (zmm); returns a sum to keep.
///
/// # Safety
/// AVX-512F and AVX-512 BF16 present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn dot_chains_bf16(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let x = _mm512_set1_ps(std::hint::black_box(1e-3));
    let a = _mm512_cvtne2ps_pbh(x, x);
    let b = _mm512_cvtne2ps_pbh(x, x);
    let mut acc = [_mm512_setzero_ps(); CHAINS];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_dpbf16_ps(*v, a, b);
        }
    }
    acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
}

/// Whether `vdpbf16ps` outruns f32 FMAs on this core by at least `margin` in FPO per
/// second: each chain run for `iters` iterations, best of three, alternating.
///
/// # Safety
/// AVX-512F and AVX-512 BF16 present, and [`Isa::Avx512`] in [`Isa::available`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma,avx512bf16")]
pub unsafe fn dot_outruns_fma(iters: u64, margin: f64) -> bool {
    let rate = |f: &dyn Fn() -> f32, fpo_per_iter: f64| {
        let start = std::time::Instant::now();
        std::hint::black_box(f());
        fpo_per_iter * iters as f64 / start.elapsed().as_secs_f64().max(1e-9)
    };
    let (mut dot, mut fma) = (0f64, 0f64);
    for _ in 0..3 {
        // SAFETY: AVX-512F and AVX-512 BF16 are this function's contract.
        dot = dot.max(rate(
            &|| unsafe { dot_chains_bf16(iters) },
            DOT_BF16_FPO_PER_ITER,
        ));
        fma = fma.max(rate(
            &|| run_chains(Isa::Avx512, iters),
            fma_fpo_per_iter(Isa::Avx512),
        ));
    }
    dot >= margin * fma
}
