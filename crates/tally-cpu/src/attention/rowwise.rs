//! Row-by-row attention, for causal masks: each query row computes scores only for the keys
//! at or before its position (and not padded), and counts only the pairs it visited.

use tally_core::backend::AttentionParams;
use tally_core::{Counted, FloatElem, Layout, Work};

use crate::util::{bytes, contiguous, for_units};

/// q (b, h, s_q, d) over k, v (b, h_kv, s_k, d); `mask` (b, s_k), non-zero = visible.
pub(super) fn attention<T: FloatElem>(
    q: (&[T], &Layout),
    k: (&[T], &Layout),
    v: (&[T], &Layout),
    mask: Option<(&[u32], &Layout)>,
    p: AttentionParams,
) -> Counted<Vec<T>> {
    let (qd, kd) = (q.1.dims(), k.1.dims());
    let (h, sq, d) = (qd[1], qd[2], qd[3]);
    let (hk, sk) = (kd[1], kd[2]);
    let group = h / hk;
    let qs = contiguous(q.0, q.1);
    let ks = contiguous(k.0, k.1);
    let vs = contiguous(v.0, v.1);
    let mask = mask.map(|(m, l)| contiguous(m, l).into_owned());
    let mut out = vec![T::default(); qs.len()];
    if out.is_empty() {
        return Counted::executed(out, Work::ZERO);
    }
    let work = for_units(&mut out, sq * d, 2 * sq * sk * d, |bh, o| {
        let (bi, hi) = (bh / h, bh % h);
        let kv = (bi * hk + hi / group) * sk * d;
        let qbase = bh * sq * d;
        let mut scores = Vec::with_capacity(sk);
        let mut keys = Vec::with_capacity(sk);
        let mut acc = vec![0f32; d];
        let mut w = Work::ZERO;
        for i in 0..sq {
            // Keys 0..end are in range: all of them, or (causal, queries aligned to
            // the end of the keys) those at or before this query's position.
            let end = if p.causal {
                (i + sk + 1).saturating_sub(sq).min(sk)
            } else {
                sk
            };
            keys.clear();
            keys.extend((0..end).filter(|&j| mask.as_ref().is_none_or(|m| m[bi * sk + j] != 0)));
            let qrow = &qs[qbase + i * d..qbase + (i + 1) * d];
            scores.clear();
            for &j in &keys {
                let krow = &ks[kv + j * d..kv + (j + 1) * d];
                let dot = qrow
                    .iter()
                    .zip(krow)
                    .fold(0f32, |a, (x, y)| a + x.to_f32() * y.to_f32());
                scores.push(dot * p.scale);
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            let n = keys.len() as u64;
            if n > 0 {
                let row_work = crate::softmax::softmax_row(&mut scores);
                for (&j, &pj) in keys.iter().zip(&scores) {
                    let vrow = &vs[kv + j * d..kv + (j + 1) * d];
                    for (a, x) in acc.iter_mut().zip(vrow) {
                        *a += pj * x.to_f32();
                    }
                }
                // q·k (d FMAs) and p·v (d FMAs) per visited key, one scale mul each.
                w += row_work
                    + Work {
                        fma: 2 * n * d as u64,
                        mul: n,
                        ..Work::ZERO
                    };
            }
            for (o, a) in o[i * d..(i + 1) * d].iter_mut().zip(&acc) {
                *o = T::from_f32(*a);
            }
        }
        w
    });
    let mask_bytes = mask
        .as_ref()
        .map_or(0, |m| bytes(m.len(), tally_core::DType::U32));
    let work = work.with_bytes(
        bytes(qs.len() + ks.len() + vs.len(), T::DTYPE) + mask_bytes,
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}
