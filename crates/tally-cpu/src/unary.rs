//! Elementwise unary functions and the affine map, in chunks; each chunk counts its elements.

use tally_core::{cost, Counted, FloatElem, Layout, UnaryOp, Work};

use crate::util::{bytes, contiguous, for_units, CHUNK};

/// The scalar definition of each function, in f32.
#[inline(always)]
pub(crate) fn apply(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Relu => x.max(0.0),
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

/// `op` over the view `x`. Shape in = shape out; output contiguous.
pub(crate) fn unary<T: FloatElem>(x: &[T], l: &Layout, op: UnaryOp) -> Counted<Vec<T>> {
    let src = contiguous(x, l);
    let mut out = vec![T::default(); src.len()];
    let per = cost::unary_per_elem(op);
    let work = for_units(&mut out, CHUNK, CHUNK, |u, o| {
        let i = &src[u * CHUNK..u * CHUNK + o.len()];
        for (o, &i) in o.iter_mut().zip(i) {
            *o = T::from_f32(apply(op, i.to_f32()));
        }
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
    let mut out = vec![T::default(); src.len()];
    let work = for_units(&mut out, CHUNK, CHUNK, |u, o| {
        let i = &src[u * CHUNK..u * CHUNK + o.len()];
        for (o, &i) in o.iter_mut().zip(i) {
            *o = T::from_f32(i.to_f32().mul_add(mul, add));
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
