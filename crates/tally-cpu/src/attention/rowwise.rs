//! Row-by-row attention, for causal masks: each query row computes scores only for the keys
//! at or before its position (and not padded), and counts only the pairs it visited.

use tally_core::backend::AttentionParams;
use tally_core::{FloatElem, Work};

use super::Heads;
use crate::softmax::softmax_row;
use crate::util::for_units;

/// Fills `out` (b, h, s_q, d) and returns the arithmetic work.
pub(super) fn run<T: FloatElem>(x: &Heads<'_, T>, p: AttentionParams, out: &mut [T]) -> Work {
    let (sq, sk, d) = (x.sq, x.sk, x.d);
    for_units(out, sq * d, 2 * sq * sk * d, |bh, o| {
        let bi = bh / x.h;
        let kv = x.kv_base(bh);
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
            keys.extend((0..end).filter(|&j| x.visible(bi, j)));
            let qrow = &x.q[qbase + i * d..qbase + (i + 1) * d];
            scores.clear();
            for &j in &keys {
                let krow = &x.k[kv + j * d..kv + (j + 1) * d];
                let dot = qrow
                    .iter()
                    .zip(krow)
                    .fold(0f32, |a, (q, k)| a + q.to_f32() * k.to_f32());
                scores.push(dot * p.scale);
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            let n = keys.len() as u64;
            if n > 0 {
                let row_work = softmax_row(&mut scores);
                for (&j, &pj) in keys.iter().zip(&scores) {
                    let vrow = &x.v[kv + j * d..kv + (j + 1) * d];
                    for (a, v) in acc.iter_mut().zip(vrow) {
                        *a += pj * v.to_f32();
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
    })
}
