//! Elementwise unary functions and the affine map, in chunks; each chunk counts its elements.

use tally_core::{cost, Counted, FloatElem, Layout, UnaryOp, Work};

use crate::buffers;
#[cfg(target_arch = "x86_64")]
use crate::util::wide;
use crate::util::{bytes, contiguous, for_units, CHUNK};
use crate::vmath::{self, Func};

/// The scalar definition of each function, in f32 (the special functions' reference;
/// the kernel runs them vectorised in `crate::vmath`).
#[inline(always)]
pub(crate) fn apply(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Relu6 => x.clamp(0.0, 6.0),
        UnaryOp::GeluErf => 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
        UnaryOp::GeluTanh => {
            const C: f32 = 0.797_884_6; // √(2/π)
            0.5 * x * (1.0 + (C * x * (1.0 + 0.044715 * x * x)).tanh())
        }
        UnaryOp::Silu => x / (1.0 + (-x).exp()),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
    }
}

/// `o[i] = op(x[i])`, with the choice of function made once per chunk, not per element,
/// so each arm compiles to its own loop. The special functions run vectorised
/// (`crate::vmath`); f16/bf16 pass through an f32 buffer of [`BLOCK`] elements. Runs in
/// the AVX-512 copy where [`wide`] says so.
fn map_chunk<T: FloatElem>(op: UnaryOp, x: &[T], o: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: `wide` is true only where AVX-512F and FMA were detected.
        return unsafe { map_chunk_avx512(op, x, o) };
    }
    map_chunk_body(op, x, o)
}

/// [`map_chunk_body`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn map_chunk_avx512<T: FloatElem>(op: UnaryOp, x: &[T], o: &mut [T]) {
    map_chunk_body(op, x, o)
}

/// The loops of [`map_chunk`], inlined into each copy.
#[inline(always)]
fn map_chunk_body<T: FloatElem>(op: UnaryOp, x: &[T], o: &mut [T]) {
    #[inline(always)]
    fn each<T: FloatElem>(x: &[T], o: &mut [T], f: impl Fn(f32) -> f32) {
        for (o, &x) in o.iter_mut().zip(x) {
            *o = T::from_f32(f(x.to_f32()));
        }
    }
    match op {
        UnaryOp::Neg => each(x, o, |v| apply(UnaryOp::Neg, v)),
        UnaryOp::Relu => each(x, o, |v| apply(UnaryOp::Relu, v)),
        UnaryOp::Relu6 => each(x, o, |v| apply(UnaryOp::Relu6, v)),
        UnaryOp::GeluErf => vectorised(Func::GeluErf, x, o),
        UnaryOp::GeluTanh => vectorised(Func::GeluTanh, x, o),
        UnaryOp::Silu => vectorised(Func::Silu, x, o),
        UnaryOp::Sigmoid => vectorised(Func::Sigmoid, x, o),
        UnaryOp::Tanh => vectorised(Func::Tanh, x, o),
        UnaryOp::Exp => vectorised(Func::Exp, x, o),
        UnaryOp::Log => each(x, o, |v| apply(UnaryOp::Log, v)),
        UnaryOp::Sqrt => each(x, o, |v| apply(UnaryOp::Sqrt, v)),
        UnaryOp::Recip => each(x, o, |v| apply(UnaryOp::Recip, v)),
    }
}

/// Elements of f16/bf16 converted to f32 at a time (two 4 KiB buffers, in L1).
const BLOCK: usize = 1024;

/// `o[i] = f(x[i])` through [`vmath::map`]: in place for f32, via f32 buffers otherwise.
#[inline(always)]
fn vectorised<T: FloatElem>(f: Func, x: &[T], o: &mut [T]) {
    if let (Some(x), Some(o)) = (T::as_f32s(x), T::as_f32s_mut(o)) {
        return vmath::map(f, x, o);
    }
    let (mut xb, mut ob) = ([0f32; BLOCK], [0f32; BLOCK]);
    for (xs, os) in x.chunks(BLOCK).zip(o.chunks_mut(BLOCK)) {
        let n = xs.len();
        for (b, &v) in xb.iter_mut().zip(xs) {
            *b = v.to_f32();
        }
        vmath::map(f, &xb[..n], &mut ob[..n]);
        for (v, &b) in os.iter_mut().zip(&ob[..n]) {
            *v = T::from_f32(b);
        }
    }
}

/// `xs[i] = op(xs[i])` in place, on this host's widest kernels (a block at a time through
/// an L1 buffer, since the kernels read and write separate slices), each element widened
/// to f32 and rounded back as [`unary`] rounds it. For an epilogue that runs over outputs
/// still in cache (a GEMM task's region); counting is the caller's.
pub(crate) fn apply_in_place<T: FloatElem>(op: UnaryOp, xs: &mut [T]) {
    let mut buf = [T::default(); BLOCK];
    for chunk in xs.chunks_mut(BLOCK) {
        let n = chunk.len();
        buf[..n].copy_from_slice(chunk);
        map_chunk(op, &buf[..n], chunk);
    }
}

/// The cost of one chunk for [`for_units`]: a special function costs an order of
/// magnitude more than a compare or a multiply.
fn chunk_cost(per: Work) -> usize {
    if per.special > 0 {
        16 * CHUNK
    } else {
        CHUNK
    }
}

/// [`apply_in_place`] over a whole output, its chunks split over the pool: the same
/// values as [`unary`] on a contiguous input. Returns the work (no bytes: the caller's op
/// accounts for what it reads and writes).
pub(crate) fn unary_in_place<T: FloatElem>(xs: &mut [T], op: UnaryOp) -> Work {
    let per = cost::unary_per_elem(op);
    for_units(xs, CHUNK, chunk_cost(per), |_, o| {
        apply_in_place(op, o);
        per.times(o.len() as u64)
    })
}

/// `op` over the view `x`. Shape in = shape out; output contiguous.
pub(crate) fn unary<T: FloatElem>(x: &[T], l: &Layout, op: UnaryOp) -> Counted<Vec<T>> {
    let src = contiguous(x, l);
    // Every element is written by its chunk.
    let mut out = buffers::for_overwrite(src.len(), T::default());
    let per = cost::unary_per_elem(op);
    let work = for_units(&mut out, CHUNK, chunk_cost(per), |u, o| {
        map_chunk(op, &src[u * CHUNK..u * CHUNK + o.len()], o);
        per.times(o.len() as u64)
    });
    let work = work.with_bytes(
        bytes(l.distinct_elems(), T::DTYPE),
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}

/// `mul·x + add` over the view `x`: one FMA per element.
pub(crate) fn affine<T: FloatElem>(x: &[T], l: &Layout, mul: f32, add: f32) -> Counted<Vec<T>> {
    let src = contiguous(x, l);
    // Every element is written by its chunk.
    let mut out = buffers::for_overwrite(src.len(), T::default());
    let work = for_units(&mut out, CHUNK, CHUNK, |u, o| {
        let i = &src[u * CHUNK..u * CHUNK + o.len()];
        for (o, &i) in o.iter_mut().zip(i) {
            *o = T::from_f32(i.to_f32() * mul + add);
        }
        Work {
            fma: o.len() as u64,
            ..Work::ZERO
        }
    });
    let work = work.with_bytes(
        bytes(l.distinct_elems(), T::DTYPE),
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}
