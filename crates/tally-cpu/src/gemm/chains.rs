//! Register-resident instruction chains: independent accumulators fed by one instruction
//! over and over, no memory traffic, so their rate is the core's arithmetic ceiling for
//! that instruction. `tally calibrate` reports them (`tally-hw`); [`super::detect_bf16`]
//! races the two AVX-512 ones to choose the bf16 GEMM path that is faster on this host.

/// Independent accumulators per chain run: enough to cover latency × issue width.
pub const CHAINS: usize = 12;

/// FPO one iteration of [`fma_chains_avx512`] performs: `CHAINS` FMAs of 16 lanes, 2 each.
pub const FMA_AVX512_FPO_PER_ITER: f64 = (CHAINS * 16 * 2) as f64;

/// FPO one iteration of [`dot_chains_bf16`] performs: `CHAINS` `vdpbf16ps`, 64 FPO each
/// (16 lanes × 2 bf16 products + 2 adds).
pub const DOT_BF16_FPO_PER_ITER: f64 = (CHAINS * 64) as f64;

/// `iters` rounds of `CHAINS` f32 AVX-512 FMAs (16 lanes each); returns a sum to keep.
///
/// # Safety
/// AVX-512F and FMA present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn fma_chains_avx512(iters: u64) -> f32 {
    let mut acc = [1.0f32; 16 * CHAINS];
    let (a, b) = (
        std::hint::black_box(0.999_999f32),
        std::hint::black_box(1e-7f32),
    );
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = v.mul_add(a, b);
        }
    }
    acc.iter().sum()
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
/// AVX-512F, FMA and AVX-512 BF16 present.
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
        // SAFETY (both): the features are this function's contract.
        dot = dot.max(rate(
            &|| unsafe { dot_chains_bf16(iters) },
            DOT_BF16_FPO_PER_ITER,
        ));
        fma = fma.max(rate(
            &|| unsafe { fma_chains_avx512(iters) },
            FMA_AVX512_FPO_PER_ITER,
        ));
    }
    dot >= margin * fma
}
