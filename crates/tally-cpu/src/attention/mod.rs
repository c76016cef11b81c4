//! Scaled-dot-product attention, one (batch, head) pair per work unit. Padded keys and (when
//! causal) future keys are never computed; each unit counts only the (query, key) pairs it
//! visited. Without a causal mask every query of a head sees the same keys, so the head runs
//! as two packed products over the visible keys ([`blocked`]); with one, rows differ, and
//! blocks of rows share a rectangle of keys run as packed products plus a short diagonal
//! ([`causal`]).

mod blocked;
mod causal;

use std::borrow::Cow;

use tally_core::backend::AttentionParams;
use tally_core::{Counted, DType, FloatElem, Layout, Work};

use crate::util::{bytes, contiguous};

/// The operands read contiguously, with their geometry: q (b, h, s_q, d) over k, v
/// (b, h_kv, s_k, d), query head `hi` reading kv head `hi / group`.
pub(super) struct Heads<'a, T: Clone> {
    q: Cow<'a, [T]>,
    k: Cow<'a, [T]>,
    v: Cow<'a, [T]>,
    mask: Option<Vec<u32>>,
    h: usize,
    hk: usize,
    sq: usize,
    sk: usize,
    d: usize,
}

impl<T: Clone> Heads<'_, T> {
    /// Offset of the k/v rows that (batch·h + head) `bh` reads.
    fn kv_base(&self, bh: usize) -> usize {
        let (bi, hi) = (bh / self.h, bh % self.h);
        (bi * self.hk + hi / (self.h / self.hk)) * self.sk * self.d
    }

    /// Whether key `j` of batch row `bi` may be attended (no mask: all may).
    fn visible(&self, bi: usize, j: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[bi * self.sk + j] != 0)
    }
}

/// q (b, h, s_q, d) over k, v (b, h_kv, s_k, d); `mask` (b, s_k), non-zero = visible.
pub(crate) fn attention<T: FloatElem>(
    q: (&[T], &Layout),
    k: (&[T], &Layout),
    v: (&[T], &Layout),
    mask: Option<(&[u32], &Layout)>,
    p: AttentionParams,
) -> Counted<Vec<T>> {
    let (qd, kd) = (q.1.dims(), k.1.dims());
    let heads = Heads {
        q: contiguous(q.0, q.1),
        k: contiguous(k.0, k.1),
        v: contiguous(v.0, v.1),
        mask: mask.map(|(m, l)| contiguous(m, l).into_owned()),
        h: qd[1],
        hk: kd[1],
        sq: qd[2],
        sk: kd[2],
        d: qd[3],
    };
    let mut out = vec![T::default(); heads.q.len()];
    let work = if out.is_empty() {
        Work::ZERO
    } else if p.causal {
        causal::run(&heads, p, &mut out)
    } else {
        blocked::run(&heads, p, &mut out)
    };
    let mask_bytes = heads
        .mask
        .as_ref()
        .map_or(0, |m| bytes(m.len(), DType::U32));
    let read = heads.q.len() + heads.k.len() + heads.v.len();
    let work = work.with_bytes(
        bytes(read, T::DTYPE) + mask_bytes,
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}
