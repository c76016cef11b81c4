//! Broadcasting binary ops, row by row over the last dimension; each row counts its elements.

use tally_core::{cost, BinaryOp, Counted, FloatElem, Layout};

use crate::util::{bytes, for_units};

#[inline(always)]
fn apply(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
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
    let last = shape.last().max(1);
    let (sa, sb) = match shape.rank() {
        0 => (0, 0),
        r => (al.strides()[r - 1], bl.strides()[r - 1]),
    };
    let mut out = vec![T::default(); n];
    let per = cost::binary_per_elem(op);
    let work = for_units(&mut out, last, last, |row, o| {
        let (oa, ob) = (row_offset(al, row), row_offset(bl, row));
        if sa == 1 && sb == 1 {
            for ((o, x), y) in o.iter_mut().zip(&a[oa..oa + last]).zip(&b[ob..ob + last]) {
                *o = T::from_f32(apply(op, x.to_f32(), y.to_f32()));
            }
        } else {
            for (j, o) in o.iter_mut().enumerate() {
                *o = T::from_f32(apply(op, a[oa + j * sa].to_f32(), b[ob + j * sb].to_f32()));
            }
        }
        per.times(o.len() as u64)
    });
    let work = work.with_bytes(
        bytes(al.distinct_elems() + bl.distinct_elems(), T::DTYPE),
        bytes(n, T::DTYPE),
    );
    Counted::executed(out, work)
}
