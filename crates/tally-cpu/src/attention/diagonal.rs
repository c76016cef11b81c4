//! The pairs a causal block's rectangle leaves out (every pair of a decode step): one
//! query row's dot products with key rows, and its probabilities' axpys into value rows,
//! on the host's vector unit with fused multiply-adds, dispatched once per row.

use std::ops::Range;

use super::Rows;
use crate::gemm::Isa;

/// Partial sums per dot product, so the reduction vectorises.
const LANES: usize = 16;

/// `out[c - keys.start] = q · k_c` for each key c in `keys`.
pub(super) fn scores(isa: Isa, q: &[f32], k: Rows<'_>, keys: Range<usize>, out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `detect`, which checked AVX-512F and FMA.
        Isa::Avx512 => unsafe { scores_avx512(q, k, keys, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `detect`, which checked AVX2 and FMA.
        Isa::Avx2 => unsafe { scores_avx2(q, k, keys, out) },
        _ => scores_body::<false>(q, k, keys, out),
    }
}

/// `acc += Σ_c probs[c] · v_c` over the values c in `values`.
pub(super) fn axpys(isa: Isa, probs: &[f32], v: Rows<'_>, values: Range<usize>, acc: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `detect`, which checked AVX-512F and FMA.
        Isa::Avx512 => unsafe { axpys_avx512(probs, v, values, acc) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `detect`, which checked AVX2 and FMA.
        Isa::Avx2 => unsafe { axpys_avx2(probs, v, values, acc) },
        _ => axpys_body::<false>(probs, v, values, acc),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn scores_avx512(q: &[f32], k: Rows<'_>, keys: Range<usize>, out: &mut [f32]) {
    scores_body::<true>(q, k, keys, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn scores_avx2(q: &[f32], k: Rows<'_>, keys: Range<usize>, out: &mut [f32]) {
    scores_body::<true>(q, k, keys, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn axpys_avx512(probs: &[f32], v: Rows<'_>, values: Range<usize>, acc: &mut [f32]) {
    axpys_body::<true>(probs, v, values, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn axpys_avx2(probs: &[f32], v: Rows<'_>, values: Range<usize>, acc: &mut [f32]) {
    axpys_body::<true>(probs, v, values, acc)
}

/// `a·b + c`, fused where `FMA` (only where the ISA has the instruction: elsewhere
/// `mul_add` is a slow library call).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(0f32, |s, (x, y)| madd::<FMA>(*x, *y, s));
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] = madd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn scores_body<const FMA: bool>(q: &[f32], k: Rows<'_>, keys: Range<usize>, out: &mut [f32]) {
    for (s, c) in out.iter_mut().zip(keys) {
        *s = dot::<FMA>(q, k.row(c));
    }
}

#[inline(always)]
fn axpys_body<const FMA: bool>(probs: &[f32], v: Rows<'_>, values: Range<usize>, acc: &mut [f32]) {
    for c in values {
        let p = probs[c];
        for (a, x) in acc.iter_mut().zip(v.row(c)) {
            *a = madd::<FMA>(p, *x, *a);
        }
    }
}
