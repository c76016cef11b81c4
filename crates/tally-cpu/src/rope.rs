//! Rotary position embedding over the last dimension; each row counts its rotated pairs.

use tally_core::backend::RopeStyle;
use tally_core::{Counted, FloatElem, Layout, Work};

use crate::util::{bytes, contiguous, for_units};

/// x (…, s, d) rotated by position: pair (a, b) at position t, frequency i becomes
/// (a·cos − b·sin, a·sin + b·cos) with cos/sin read from the (s, d/2) tables.
pub(crate) fn rope<T: FloatElem>(
    x: &[T],
    l: &Layout,
    cos: (&[T], &Layout),
    sin: (&[T], &Layout),
    style: RopeStyle,
) -> Counted<Vec<T>> {
    let src = contiguous(x, l);
    let r = l.dims().len();
    let (s, d) = (l.dims()[r - 2], l.dims()[r - 1]);
    let half = d / 2;
    let tables = cos.1.distinct_elems() + sin.1.distinct_elems();
    let cos = contiguous(cos.0, cos.1);
    let sin = contiguous(sin.0, sin.1);
    let mut out = vec![T::default(); src.len()];
    let work = for_units(&mut out, d, 3 * d, |row, o| {
        let i = &src[row * d..(row + 1) * d];
        let t = row % s;
        for f in 0..half {
            let (ia, ib) = match style {
                RopeStyle::Interleaved => (2 * f, 2 * f + 1),
                RopeStyle::Half => (f, f + half),
            };
            let (c, sn) = (cos[t * half + f].to_f32(), sin[t * half + f].to_f32());
            let (a, b) = (i[ia].to_f32(), i[ib].to_f32());
            o[ia] = T::from_f32(a * c - b * sn);
            o[ib] = T::from_f32(a * sn + b * c);
        }
        let pairs = half as u64;
        Work {
            mul: 4 * pairs,
            add: 2 * pairs,
            ..Work::ZERO
        }
    });
    let work = work.with_bytes(
        bytes(l.distinct_elems() + tables, T::DTYPE),
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}
