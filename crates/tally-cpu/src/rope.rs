//! Rotary position embedding over the last dimension; each row counts its rotated pairs.

use tally_core::backend::RopeStyle;
use tally_core::{Counted, FloatElem, Layout, Work};

use crate::buffers;
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
    // Every element is written: the pairs cover each row, since the tensor layer admits
    // only an even head dimension.
    debug_assert_eq!(d % 2, 0, "rope needs an even head dimension");
    let mut out = buffers::for_overwrite(src.len(), T::default());
    let work = for_units(&mut out, d, 3 * d, |row, o| {
        let i = &src[row * d..(row + 1) * d];
        let t = row % s;
        let (cs, sn) = (
            &cos[t * half..(t + 1) * half],
            &sin[t * half..(t + 1) * half],
        );
        // The pairing is chosen once per row, so each arm is a plain loop over pairs.
        let turn = |a: T, b: T, c: T, s: T| {
            let (a, b, c, s) = (a.to_f32(), b.to_f32(), c.to_f32(), s.to_f32());
            (T::from_f32(a * c - b * s), T::from_f32(a * s + b * c))
        };
        match style {
            RopeStyle::Interleaved => {
                for (((o, i), &c), &s) in
                    o.chunks_exact_mut(2).zip(i.chunks_exact(2)).zip(cs).zip(sn)
                {
                    (o[0], o[1]) = turn(i[0], i[1], c, s);
                }
            }
            RopeStyle::Half => {
                let (lo, hi) = o.split_at_mut(half);
                for f in 0..half {
                    (lo[f], hi[f]) = turn(i[f], i[f + half], cs[f], sn[f]);
                }
            }
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
