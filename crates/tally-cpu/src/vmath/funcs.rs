//! The functions themselves, written once against [`F32s`]: exp by Cody–Waite range
//! reduction and a Cephes polynomial, erfc by the Numerical Recipes Chebyshev fit (both
//! relative error ~1e-7), and tanh, sigmoid, silu, gelu_erf and gelu_tanh built on them
//! in forms that stay accurate in relative terms in the tails.

use super::lanes::F32s;

/// Largest input whose exp is computed; above it (exp(88.8) > f32::MAX) the result is +inf.
const EXP_HI: f32 = 88.8;
/// Smallest input whose exp is computed; below it the result rounds to 0.
const EXP_LO: f32 = -104.0;

/// exp(hi + lo) for a small correction `lo` (|lo| ≲ 2), so that a caller holding an
/// argument in two parts (such as −x² split exactly) keeps its low bits.
///
/// n = round((hi + lo)·log₂e); r = (hi − n·ln2_hi) − n·ln2_lo + lo, |r| ≲ ln2/2 (the
/// first difference is exact); e^r by a degree-7 polynomial; 2ⁿ applied in two halves
/// so that n from −150 (subnormal results) to 128 (overflow to inf) stays representable.
#[inline(always)]
pub(super) fn exp_parts<V: F32s>(hi: V, lo: V) -> V {
    // The bounds come first: `max` and `min` return their argument where either lane is
    // NaN, so a NaN `hi` passes through the clamp (and the rest) as NaN.
    let hi = V::splat(EXP_HI).min(V::splat(EXP_LO).max(hi));
    let n = hi.add(lo).mul(V::splat(LOG2E)).round();
    let r = n
        .mul(V::splat(-LN2_HI))
        .add(hi)
        .add(n.mul(V::splat(-LN2_LO)))
        .add(lo);
    exp_reduced(r, n)
}

/// log₂e.
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits so n·LN2_HI is exact.
const LN2_HI: f32 = 0.693_359_4;
/// See [`LN2_HI`].
const LN2_LO: f32 = -2.121_944_4e-4;

/// e^r · 2ⁿ for |r| ≲ ln2/2: Cephes expf's e^r ≈ 1 + r + r²·P(r), then the scaling.
#[inline(always)]
fn exp_reduced<V: F32s>(r: V, n: V) -> V {
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_2e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        5e-1,
    ];
    let mut p = V::splat(P[0]);
    for &c in &P[1..] {
        p = p.mul_add(r, V::splat(c));
    }
    let e = p.mul_add(r.mul(r), r).add(V::splat(1.0));
    e.scale_pow2(n)
}

/// eˣ for the shifted scores of a softmax (x ≤ 0 up to rounding, so no upper clamp);
/// NaN → NaN. [`exp`] with its reduction fused (r = x − n·ln2 in two multiply-adds,
/// exact as the two steps of [`exp_parts`] are) and without the second part: 5 fewer
/// instructions a register on a softmax's hottest loop.
#[inline(always)]
pub(super) fn exp_shifted<V: F32s>(x: V) -> V {
    // A NaN score stays NaN through the clamp (see `exp_parts`) and every step after it.
    let hi = V::splat(EXP_LO).max(x);
    let n = hi.mul(V::splat(LOG2E)).round();
    let r = n.mul_add(V::splat(-LN2_HI), hi);
    let r = n.mul_add(V::splat(-LN2_LO), r);
    exp_reduced(r, n)
}

/// eˣ; +inf → +inf, −inf → 0, NaN → NaN (through the clamp of [`exp_parts`]).
#[inline(always)]
pub(super) fn exp<V: F32s>(x: V) -> V {
    exp_parts(x, V::splat(0.0))
}

/// ½·erfc(a/√2) for a = |x| ≥ 0 (the factor gelu_erf needs), relative error ~2e-7.
///
/// Numerical Recipes' `erfcc`: with z = a/√2 and t = 1/(1 + z/2),
/// erfc(z) = t·exp(−z² − 1.26551223 + t·Q(t)), fractional error < 1.2e-7 for all z ≥ 0;
/// the ½ joins the exponent as −ln 2 (in the fit's constant term). z² = a²/2 is formed
/// exactly (`square_error` gives the rounding error of a·a) and its high part goes to
/// [`exp_negative`] apart from the rest, so the result keeps its relative accuracy where
/// erfc is tiny.
#[inline(always)]
fn half_erfc_scaled<V: F32s>(a: V) -> V {
    const Q: [f32; 10] = [
        0.170_872_77,
        -0.822_152_23,
        1.488_515_9,
        -1.135_204,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_7,
        // The fit's −1.26551223, and −ln 2 for the ½.
        -1.265_512_2 - std::f32::consts::LN_2,
    ];
    // Beyond a = 14, erfc(a/√2) < 1e-43: the result is 0. (The clamp also keeps a·a
    // finite, and the exponent within what `exp_negative` takes.)
    const A_MAX: f32 = 14.0;
    let big = V::splat(A_MAX).lt(a);
    let a = a.min(V::splat(A_MAX));
    // t = 1/(1 + z/2), z = a/√2.
    let t = a
        .mul_add(
            V::splat(std::f32::consts::FRAC_1_SQRT_2 / 2.0),
            V::splat(1.0),
        )
        .recip();
    let mut q = V::splat(Q[0]);
    for &c in &Q[1..] {
        q = q.mul_add(t, V::splat(c));
    }
    // a·a = sq + err exactly, so −a²/2 = −sq/2 (exact) − err/2.
    let sq = a.mul(a);
    let err = a.square_error(sq);
    let half = V::splat(-0.5);
    let e = t.mul(exp_negative(sq.mul(half), err.mul_add(half, q)));
    V::select(big, V::splat(0.0), e)
}

/// e^(hi + lo) for hi in [−98, 0] and a small lo (|lo| ≲ 2; what [`half_erfc_scaled`]
/// passes): [`exp_parts`] without its clamps, which that range never reaches, and with
/// the reduction fused as in [`exp_shifted`].
#[inline(always)]
fn exp_negative<V: F32s>(hi: V, lo: V) -> V {
    let n = hi.add(lo).mul(V::splat(LOG2E)).round();
    let r = n.mul_add(V::splat(-LN2_HI), hi);
    let r = n.mul_add(V::splat(-LN2_LO), r).add(lo);
    exp_reduced(r, n)
}

/// erfc(x/√2) for x ≥ 0, exposed for the accuracy tests.
#[cfg(test)]
#[inline(always)]
pub(super) fn erfc_of_scaled<V: F32s>(a: V) -> V {
    half_erfc_scaled(a).mul(V::splat(2.0))
}

/// gelu_erf(x) = 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2), evaluated as
/// 0.5·x·erfc(|x|/√2) for x < 0 and x·(1 − 0.5·erfc(x/√2)) for x ≥ 0 (no cancellation).
#[inline(always)]
pub(super) fn gelu_erf<V: F32s>(x: V) -> V {
    let e = half_erfc_scaled(x.abs());
    let neg = x.lt(V::splat(0.0));
    V::select(neg, x.mul(e), x.mul(V::splat(1.0).sub(e)))
}

/// tanh(x): x + x³·P(x²) below |x| = 0.625 (Cephes `tanhf`), 1 − 2/(e^{2|x|} + 1) above,
/// with the sign of x; ±inf → ±1, NaN → NaN.
#[inline(always)]
pub(super) fn tanh<V: F32s>(x: V) -> V {
    const P: [f32; 5] = [
        -5.704_988_7e-3,
        2.063_909e-2,
        -5.373_971_6e-2,
        1.333_144_2e-1,
        -3.333_328e-1,
    ];
    let a = x.abs();
    let s = x.mul(x);
    let mut p = V::splat(P[0]);
    for &c in &P[1..] {
        p = p.mul_add(s, V::splat(c));
    }
    let small = p.mul(s).mul_add(x, x);
    // Beyond |x| = 9.02, tanh rounds to 1 in f32.
    let a2 = a.min(V::splat(9.02)).mul(V::splat(2.0));
    let one = V::splat(1.0);
    let large = one
        .sub(V::splat(2.0).mul(exp(a2).add(one).recip()))
        .with_sign_of(x);
    let r = V::select(a.lt(V::splat(0.625)), small, large);
    V::select(x.is_nan(), x, r)
}

/// σ(x) = 1/(1 + e^{−x}), evaluated as e^{x}/(1 + e^{x}) for x < 0 so that e^{−x} never
/// overflows and subnormal results keep their bits; +inf → 1, −inf → 0, NaN → NaN.
#[inline(always)]
pub(super) fn sigmoid<V: F32s>(x: V) -> V {
    let one = V::splat(1.0);
    let e = exp(V::splat(0.0).sub(x.abs()));
    let num = V::select(x.lt(V::splat(0.0)), e, one);
    num.mul(one.add(e).recip())
}

/// silu(x) = x·σ(x).
#[inline(always)]
pub(super) fn silu<V: F32s>(x: V) -> V {
    x.mul(sigmoid(x))
}

/// gelu_tanh(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)·x·(1 + 0.044715·x²), evaluated as
/// x·σ(2u) (1 + tanh u = 2σ(2u)), which has no cancellation for x < 0.
#[inline(always)]
pub(super) fn gelu_tanh<V: F32s>(x: V) -> V {
    // 2·√(2/π) and 2·√(2/π)·0.044715.
    const C1: f32 = 1.595_769;
    const C3: f32 = 0.071_354_82;
    let x2 = x.mul(x);
    let two_u = x.mul(x2.mul_add(V::splat(C3), V::splat(C1)));
    x.mul(sigmoid(two_u))
}
