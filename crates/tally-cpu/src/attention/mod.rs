//! Scaled-dot-product attention, one (batch, head) pair per work unit. Padded keys and (when
//! causal) future keys are never computed; each unit counts only the (query, key) pairs it
//! visited. Without a causal mask every query of a head sees the same keys, so the head runs
//! as two packed products over the visible keys ([`blocked`]); with one, rows differ and run
//! one by one ([`rowwise`]).

mod blocked;
mod rowwise;

use tally_core::backend::AttentionParams;
use tally_core::{Counted, FloatElem, Layout};

/// q (b, h, s_q, d) over k, v (b, h_kv, s_k, d); `mask` (b, s_k), non-zero = visible.
pub(crate) fn attention<T: FloatElem>(
    q: (&[T], &Layout),
    k: (&[T], &Layout),
    v: (&[T], &Layout),
    mask: Option<(&[u32], &Layout)>,
    p: AttentionParams,
) -> Counted<Vec<T>> {
    if p.causal {
        rowwise::attention(q, k, v, mask, p)
    } else {
        blocked::attention(q, k, v, mask, p)
    }
}
