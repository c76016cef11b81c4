//! Broadcasting binary ops. Each operand, per row of the last dimension, is a contiguous
//! run, one value repeated (a broadcast scalar or column), or a strided walk; the op is
//! chosen once per row so the common cases compile to vector loops. When both operands
//! are contiguous or a single scalar over the whole output, rows are merged into flat
//! chunks. Each unit counts its elements.

use tally_core::{cost, BinaryOp, Counted, FloatElem, Layout};

use crate::buffers;
#[cfg(target_arch = "x86_64")]
use crate::util::wide;
use crate::util::{bytes, for_units, CHUNK};
use crate::vmath::{self, Func};

/// One operand over one output row.
#[derive(Clone, Copy)]
enum Side<'a, T> {
    /// Consecutive elements.
    Run(&'a [T]),
    /// One value for the whole row.
    Splat(f32),
    /// Elements `stride` apart, from the slice's start.
    Strided(&'a [T], usize),
}

impl<T: FloatElem> Side<'_, T> {
    #[inline(always)]
    fn get(&self, j: usize) -> f32 {
        match self {
            Side::Run(x) => x[j].to_f32(),
            Side::Splat(v) => *v,
            Side::Strided(x, s) => x[j * s].to_f32(),
        }
    }
}

/// `o[j] = f(a[j], b[j])` with the operand kinds matched once, outside the loop.
#[inline(always)]
fn row_with<T: FloatElem>(o: &mut [T], a: Side<T>, b: Side<T>, f: impl Fn(f32, f32) -> f32) {
    match (a, b) {
        (Side::Run(x), Side::Run(y)) => {
            for ((o, x), y) in o.iter_mut().zip(x).zip(y) {
                *o = T::from_f32(f(x.to_f32(), y.to_f32()));
            }
        }
        (Side::Run(x), Side::Splat(y)) => {
            for (o, x) in o.iter_mut().zip(x) {
                *o = T::from_f32(f(x.to_f32(), y));
            }
        }
        (Side::Splat(x), Side::Run(y)) => {
            for (o, y) in o.iter_mut().zip(y) {
                *o = T::from_f32(f(x, y.to_f32()));
            }
        }
        (a, b) => {
            for (j, o) in o.iter_mut().enumerate() {
                *o = T::from_f32(f(a.get(j), b.get(j)));
            }
        }
    }
}

/// One row (or flat chunk) of `op`, in the AVX-512 copy where [`wide`] says so.
fn row<T: FloatElem>(op: BinaryOp, o: &mut [T], a: Side<T>, b: Side<T>) {
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: `wide` is true only where AVX-512F and FMA were detected.
        return unsafe { row_avx512(op, o, a, b) };
    }
    row_body(op, o, a, b)
}

/// [`row_body`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn row_avx512<T: FloatElem>(op: BinaryOp, o: &mut [T], a: Side<T>, b: Side<T>) {
    row_body(op, o, a, b)
}

/// The loops of [`row`], inlined into each copy.
#[inline(always)]
fn row_body<T: FloatElem>(op: BinaryOp, o: &mut [T], a: Side<T>, b: Side<T>) {
    match op {
        BinaryOp::Add => row_with(o, a, b, |x, y| x + y),
        BinaryOp::Sub => row_with(o, a, b, |x, y| x - y),
        BinaryOp::Mul => row_with(o, a, b, |x, y| x * y),
        BinaryOp::Div => row_with(o, a, b, |x, y| x / y),
        BinaryOp::Maximum => row_with(o, a, b, f32::max),
        BinaryOp::Minimum => row_with(o, a, b, f32::min),
        BinaryOp::SiluMul => silu_mul_row(o, a, b),
    }
}

/// Elements [`silu_mul_row`] takes through its f32 buffers at a time (two 1 KiB buffers).
const SILU_BLOCK: usize = 256;

/// `o[j] = silu(a[j])·b[j]`: silu runs vectorised ([`vmath::map`]) over a block of `a`
/// gathered into f32, and the product with `b` is rounded once into `o`.
#[inline(always)]
fn silu_mul_row<T: FloatElem>(o: &mut [T], a: Side<T>, b: Side<T>) {
    let (mut xa, mut sa) = ([0f32; SILU_BLOCK], [0f32; SILU_BLOCK]);
    for (c, oc) in o.chunks_mut(SILU_BLOCK).enumerate() {
        let (lo, n) = (c * SILU_BLOCK, oc.len());
        let (xa, sa) = (&mut xa[..n], &mut sa[..n]);
        match a {
            Side::Run(x) => {
                for (d, v) in xa.iter_mut().zip(&x[lo..lo + n]) {
                    *d = v.to_f32();
                }
            }
            a => {
                for (j, d) in xa.iter_mut().enumerate() {
                    *d = a.get(lo + j);
                }
            }
        }
        vmath::map(Func::Silu, xa, sa);
        match b {
            Side::Run(y) => {
                for ((o, s), y) in oc.iter_mut().zip(sa.iter()).zip(&y[lo..lo + n]) {
                    *o = T::from_f32(s * y.to_f32());
                }
            }
            Side::Splat(y) => {
                for (o, s) in oc.iter_mut().zip(sa.iter()) {
                    *o = T::from_f32(s * y);
                }
            }
            b => {
                for (j, (o, s)) in oc.iter_mut().zip(sa.iter()).enumerate() {
                    *o = T::from_f32(s * b.get(lo + j));
                }
            }
        }
    }
}

/// Storage offset of the first element of logical row `row` (last dim excluded).
fn row_offset(l: &Layout, mut row: usize) -> usize {
    let dims = l.dims();
    let strides = l.strides();
    let mut off = l.offset();
    for d in (0..dims.len().saturating_sub(1)).rev() {
        off += (row % dims[d]) * strides[d];
        row /= dims[d];
    }
    off
}

/// How an operand covers the whole output, when rows can be merged.
enum Flat<'a, T> {
    /// Its elements are the output's, in order.
    Run(&'a [T]),
    /// One element everywhere.
    Splat(f32),
}

impl<'a, T: FloatElem> Flat<'a, T> {
    /// The operand over output elements `lo..lo + len`.
    fn side(&self, lo: usize, len: usize) -> Side<'a, T> {
        match self {
            Flat::Run(x) => Side::Run(&x[lo..lo + len]),
            Flat::Splat(v) => Side::Splat(*v),
        }
    }
}

/// The operand over one row of `last` elements starting at `off`, last-dim stride `s`.
fn row_side<T: FloatElem>(x: &[T], off: usize, s: usize, last: usize) -> Side<'_, T> {
    match s {
        0 => Side::Splat(x[off].to_f32()),
        1 => Side::Run(&x[off..off + last]),
        s => Side::Strided(&x[off..], s),
    }
}

fn flat<'a, T: FloatElem>(x: &'a [T], l: &Layout) -> Option<Flat<'a, T>> {
    if let Some(r) = l.contiguous_range() {
        return Some(Flat::Run(&x[r]));
    }
    l.strides()
        .iter()
        .all(|&s| s == 0)
        .then(|| Flat::Splat(x[l.offset()].to_f32()))
}

/// `op(a, b)` where both layouts are already broadcast to the output shape.
pub(crate) fn binary<T: FloatElem>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    op: BinaryOp,
) -> Counted<Vec<T>> {
    let shape = al.shape();
    let n = shape.elem_count();
    // Every element is written below (both branches cover the whole output).
    let mut out = buffers::for_overwrite(n, T::default());
    let per = cost::binary_per_elem(op);
    // As for unary ops: a special function (silu_mul's sigmoid, a division) costs an order
    // of magnitude more than an add, so fewer elements make a call worth splitting.
    let weight = if per.special > 0 { 16 } else { 1 };
    let work = match (flat(a, al), flat(b, bl)) {
        (Some(fa), Some(fb)) => for_units(&mut out, CHUNK, weight * CHUNK, |u, o| {
            let (lo, len) = (u * CHUNK, o.len());
            row(op, o, fa.side(lo, len), fb.side(lo, len));
            per.times(o.len() as u64)
        }),
        _ => {
            let last = shape.last().max(1);
            let (sa, sb) = match shape.rank() {
                0 => (0, 0),
                r => (al.strides()[r - 1], bl.strides()[r - 1]),
            };
            for_units(&mut out, last, weight * last, |r, o| {
                let (oa, ob) = (row_offset(al, r), row_offset(bl, r));
                row(op, o, row_side(a, oa, sa, last), row_side(b, ob, sb, last));
                per.times(o.len() as u64)
            })
        }
    };
    let work = work.with_bytes(
        bytes(al.distinct_elems() + bl.distinct_elems(), T::DTYPE),
        bytes(n, T::DTYPE),
    );
    Counted::executed(out, work)
}
