//! Vectorised f32 special functions (exp, tanh, sigmoid, silu, gelu_erf, gelu_tanh) and
//! the softmax row built on exp, for AVX-512F, AVX2 + FMA and portable Rust, with the
//! variant chosen once per host by [`crate::gemm::detect`].
//!
//! The math lives once in `funcs.rs`, generic over the register type of `lanes.rs`
//! (portable) and `x86.rs`; the entry points here stamp it into one
//! `#[target_feature]` function per ISA. Counting is the callers' business: by the FPO
//! convention a special function is one `special` however it is computed.

mod funcs;
mod lanes;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::gemm::{detect, Isa};
use lanes::{F32s, Portable};

/// The functions this module vectorises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    /// eˣ.
    Exp,
    /// tanh x.
    Tanh,
    /// σ(x) = 1/(1 + e^{−x}).
    Sigmoid,
    /// x·σ(x).
    Silu,
    /// 0.5·x·(1 + erf(x/√2)).
    GeluErf,
    /// 0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²))).
    GeluTanh,
}

/// `out[i] = f(x[i])` on this host's best ISA. `x` and `out` have the same length.
pub(crate) fn map(f: Func, x: &[f32], out: &mut [f32]) {
    map_with(detect(), f, x, out)
}

/// `out[i] = f(x[i])` with the `isa` variant (one from `Isa::available()`).
pub(crate) fn map_with(isa: Isa, f: Func, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "vmath::map lengths");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which detected AVX-512F and FMA.
        Isa::Avx512 => unsafe { map_avx512(f, x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2 and FMA were detected before this variant was chosen.
        Isa::Avx2 => unsafe { map_avx2(f, x, out) },
        _ => map_lanes::<Portable>(f, x, out),
    }
}

/// Softmax of one row in place on this host's best ISA: max, exp(x − max) and its sum,
/// one reciprocal, scale. `row` (n,) → (n,).
pub(crate) fn softmax_row(row: &mut [f32]) {
    softmax_row_with(detect(), row, 1.0)
}

/// Softmax of `scale·row` in place: the scaling joins the max pass and the exponent
/// (exp(scale·x − max) by one fused multiply-add), not a pass of its own.
pub(crate) fn softmax_row_scaled(row: &mut [f32], scale: f32) {
    softmax_row_with(detect(), row, scale)
}

/// [`softmax_row_scaled`] with the `isa` variant (one from `Isa::available()`).
pub(crate) fn softmax_row_with(isa: Isa, row: &mut [f32], scale: f32) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which detected AVX-512F and FMA.
        Isa::Avx512 => unsafe { softmax_avx512(row, scale) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2 and FMA were detected before this variant was chosen.
        Isa::Avx2 => unsafe { softmax_avx2(row, scale) },
        _ => softmax_lanes::<Portable>(row, scale),
    }
}

/// [`map_with`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn map_avx512(f: Func, x: &[f32], out: &mut [f32]) {
    map_lanes::<x86::Avx512>(f, x, out)
}

/// [`map_with`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn map_avx2(f: Func, x: &[f32], out: &mut [f32]) {
    map_lanes::<x86::Avx2>(f, x, out)
}

/// [`softmax_row_with`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn softmax_avx512(row: &mut [f32], scale: f32) {
    softmax_lanes::<x86::Avx512>(row, scale)
}

/// [`softmax_row_with`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_avx2(row: &mut [f32], scale: f32) {
    softmax_lanes::<x86::Avx2>(row, scale)
}

/// The widest register any variant uses, for the padded tail.
const MAX_LANES: usize = 16;

/// One function of `funcs.rs` as a type, so the loop below calls it directly: a function
/// passed as a value would go through a call shim compiled without the target feature,
/// and its intrinsics would no longer inline.
trait Kernel {
    /// The function on one register.
    fn eval<V: F32s>(x: V) -> V;
}

/// Stamps out one [`Kernel`] type per function of `funcs.rs`.
macro_rules! kernel {
    ($name:ident, $f:ident) => {
        #[doc = concat!("`funcs::", stringify!($f), "` as a [`Kernel`].")]
        struct $name;
        impl Kernel for $name {
            #[inline(always)]
            fn eval<V: F32s>(x: V) -> V {
                funcs::$f(x)
            }
        }
    };
}
kernel!(ExpK, exp);
kernel!(TanhK, tanh);
kernel!(SigmoidK, sigmoid);
kernel!(SiluK, silu);
kernel!(GeluErfK, gelu_erf);
kernel!(GeluTanhK, gelu_tanh);

/// `out[i] = K(x[i])` a register at a time; the tail goes through a padded register.
#[inline(always)]
fn each<V: F32s, K: Kernel>(x: &[f32], out: &mut [f32]) {
    let l = V::LANES;
    let quads = x.len() / (4 * l) * (4 * l);
    for (xs, os) in x[..quads]
        .chunks_exact(4 * l)
        .zip(out[..quads].chunks_exact_mut(4 * l))
    {
        let (a, b) = (V::load(xs), V::load(&xs[l..]));
        let (c, d) = (V::load(&xs[2 * l..]), V::load(&xs[3 * l..]));
        let (a, b, c, d) = (K::eval(a), K::eval(b), K::eval(c), K::eval(d));
        a.store(os);
        b.store(&mut os[l..]);
        c.store(&mut os[2 * l..]);
        d.store(&mut os[3 * l..]);
    }
    let whole = x.len() / l * l;
    for (xs, os) in x[quads..whole]
        .chunks_exact(l)
        .zip(out[quads..whole].chunks_exact_mut(l))
    {
        K::eval(V::load(xs)).store(os);
    }
    let rest = x.len() - whole;
    if rest > 0 {
        let mut buf = [0f32; MAX_LANES];
        buf[..rest].copy_from_slice(&x[whole..]);
        K::eval(V::load(&buf)).store(&mut buf);
        out[whole..].copy_from_slice(&buf[..rest]);
    }
}

/// The function chosen once, then one loop per function.
#[inline(always)]
fn map_lanes<V: F32s>(f: Func, x: &[f32], out: &mut [f32]) {
    match f {
        Func::Exp => each::<V, ExpK>(x, out),
        Func::Tanh => each::<V, TanhK>(x, out),
        Func::Sigmoid => each::<V, SigmoidK>(x, out),
        Func::Silu => each::<V, SiluK>(x, out),
        Func::GeluErf => each::<V, GeluErfK>(x, out),
        Func::GeluTanh => each::<V, GeluTanhK>(x, out),
    }
}

/// Softmax of `scale·row` in place, a register at a time (the tail's max taken element by
/// element, its exp in a register padded with a copy of its first element). Four
/// registers per step, with four partial maxima and sums, so the exp chains of
/// neighbouring registers overlap.
#[inline(always)]
fn softmax_lanes<V: F32s>(row: &mut [f32], scale: f32) {
    let l = V::LANES;
    let whole = row.len() / l * l;
    let quads = row.len() / (4 * l) * (4 * l);
    let rest = row.len() - whole;
    let mut tail = [0f32; MAX_LANES];
    tail[..rest].copy_from_slice(&row[whole..]);
    let s = V::splat(scale);
    let mut m = [V::splat(f32::NEG_INFINITY); 4];
    for c in row[..quads].chunks_exact(4 * l) {
        m = [
            V::load(c).mul(s).max(m[0]),
            V::load(&c[l..]).mul(s).max(m[1]),
            V::load(&c[2 * l..]).mul(s).max(m[2]),
            V::load(&c[3 * l..]).mul(s).max(m[3]),
        ];
    }
    for c in row[quads..whole].chunks_exact(l) {
        m[0] = V::load(c).mul(s).max(m[0]);
    }
    let tail_max = tail[..rest]
        .iter()
        .fold(f32::NEG_INFINITY, |a, &v| a.max(v * scale));
    let max = m[0].max(m[1]).max(m[2].max(m[3])).max_lane().max(tail_max);
    let neg_max = V::splat(-max);
    let mut sum = [V::splat(0.0); 4];
    // No closures here: one would compile without the caller's target feature, and the
    // intrinsics in it would become calls.
    for c in row[..quads].chunks_exact_mut(4 * l) {
        let (x0, x1) = (V::load(c), V::load(&c[l..]));
        let (x2, x3) = (V::load(&c[2 * l..]), V::load(&c[3 * l..]));
        let e0 = funcs::exp_shifted(x0.mul_add(s, neg_max));
        let e1 = funcs::exp_shifted(x1.mul_add(s, neg_max));
        let e2 = funcs::exp_shifted(x2.mul_add(s, neg_max));
        let e3 = funcs::exp_shifted(x3.mul_add(s, neg_max));
        e0.store(c);
        e1.store(&mut c[l..]);
        e2.store(&mut c[2 * l..]);
        e3.store(&mut c[3 * l..]);
        sum = [
            sum[0].add(e0),
            sum[1].add(e1),
            sum[2].add(e2),
            sum[3].add(e3),
        ];
    }
    for c in row[quads..whole].chunks_exact_mut(l) {
        let e = funcs::exp_shifted(V::load(c).mul_add(s, neg_max));
        e.store(c);
        sum[0] = sum[0].add(e);
    }
    let mut total = sum[0].add(sum[1]).add(sum[2].add(sum[3])).sum();
    if rest > 0 {
        // The padded lanes repeat a real one: exp of the padding (−inf) would underflow
        // through subnormals, and each subnormal result costs a microcode assist (it
        // cost rows of 512 a sixth of their time when every row ran a padded register).
        let first = tail[0];
        tail[rest..].fill(first);
        funcs::exp_shifted(V::load(&tail).mul_add(s, neg_max)).store(&mut tail);
        total += tail[..rest].iter().sum::<f32>();
    }
    let inv = 1.0 / total;
    let inv_v = V::splat(inv);
    for c in row[..whole].chunks_exact_mut(l) {
        V::load(c).mul(inv_v).store(c);
    }
    for (r, t) in row[whole..].iter_mut().zip(&tail) {
        *r = t * inv;
    }
}
