//! Softmax over the last dimension, one row per work unit.

use tally_core::{Counted, FloatElem, Layout, Work};

use crate::buffers;
use crate::util::{bytes, contiguous, for_units};
use crate::vmath;

/// Softmax of one row in place (f32): max, shift, exp, sum, one reciprocal, scale, run
/// vectorised by [`vmath::softmax_row`]. Returns the row's work by the convention
/// (3n adds, n muls, n + 1 specials), however many instructions that took.
pub(crate) fn softmax_row(row: &mut [f32]) -> Work {
    let n = row.len() as u64;
    vmath::softmax_row(row);
    Work {
        add: 3 * n,
        mul: n,
        special: n + 1,
        ..Work::ZERO
    }
}

/// Softmax of `scale·row` in place (f32), the scaling folded into the max pass and the
/// exponent by [`vmath::softmax_row_scaled`]. Counted by the convention as the scaling
/// (n muls) and then [`softmax_row`]: however the multiply is fused, it is done.
pub(crate) fn scaled_softmax_row(row: &mut [f32], scale: f32) -> Work {
    let n = row.len() as u64;
    vmath::softmax_row_scaled(row, scale);
    Work {
        add: 3 * n,
        mul: 2 * n,
        special: n + 1,
        ..Work::ZERO
    }
}

/// Softmax over the last dimension of the view `x`.
pub(crate) fn softmax_last<T: FloatElem>(x: &[T], l: &Layout) -> Counted<Vec<T>> {
    let src = contiguous(x, l);
    let n = l.shape().last().max(1);
    // Every row is written whole (copied, then normalised in place, or converted back).
    let mut out = buffers::for_overwrite(src.len(), T::default());
    let work = for_units(&mut out, n, 20 * n, |r, o| {
        let x = &src[r * n..(r + 1) * n];
        if let (Some(x), Some(o)) = (T::as_f32s(x), T::as_f32s_mut(o)) {
            // f32: the row is computed in the output itself.
            o.copy_from_slice(x);
            return softmax_row(o);
        }
        let mut row: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
        let w = softmax_row(&mut row);
        for (o, &b) in o.iter_mut().zip(&row) {
            *o = T::from_f32(b);
        }
        w
    });
    let work = work.with_bytes(
        bytes(l.distinct_elems(), T::DTYPE),
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}
