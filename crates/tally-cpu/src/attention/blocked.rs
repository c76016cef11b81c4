//! Non-causal attention per (batch, head): gather the visible keys and values, then
//! S = Q·K_visᵀ and O = softmax(scale·S)·V_vis as two packed products in f32.

use tally_core::backend::AttentionParams;
use tally_core::{FloatElem, Work};

use super::{with_scratch, Heads};
use crate::gemm::{gemm, MatRef};
use crate::softmax::softmax_row;
use crate::util::for_units;

/// Fills `out` (b, h, s_q, d) and returns the arithmetic work.
pub(super) fn run<T: FloatElem>(x: &Heads<'_, T>, p: AttentionParams, out: &mut [T]) -> Work {
    let (sq, sk, d) = (x.sq, x.sk, x.d);
    for_units(out, sq * d, 2 * sq * sk * d, |bh, o| {
        with_scratch(|sc| {
            // Visible key positions (listed when there is a mask).
            sc.keys.clear();
            if x.mask.is_some() {
                sc.keys.extend((0..sk).filter(|&j| x.visible(bh / x.h, j)));
            }
            // A mask that hides nothing reads the rows as if there were none.
            let keys = x
                .mask
                .as_ref()
                .map(|_| sc.keys.as_slice())
                .filter(|k| k.len() < sk);
            let n = keys.map_or(sk, <[usize]>::len);
            if n == 0 {
                o.iter_mut().for_each(|v| *v = T::default());
                return Work::ZERO;
            }
            let qf = x.q_rows(bh, &mut sc.qf);
            let (kf, vf) = x.kv_rows(bh, keys, &mut sc.kf, &mut sc.vf);
            // S (s_q, n) = Q (s_q, d) · K_visᵀ (d, n): K_vis read with its rows as columns.
            sc.s.clear();
            sc.s.resize(sq * n, 0f32);
            let mut w = gemm(sq, n, d, qf.matrix(0), kf.columns(), None, &mut sc.s);
            for row in sc.s.chunks_mut(n) {
                row.iter_mut().for_each(|v| *v *= p.scale);
                w += softmax_row(row)
                    + Work {
                        mul: n as u64,
                        ..Work::ZERO
                    };
            }
            // O (s_q, d) = P (s_q, n) · V_vis (n, d).
            sc.acc.clear();
            sc.acc.resize(sq * d, 0f32);
            let pm = MatRef::rows(&sc.s, 0, n);
            w += gemm(sq, d, n, pm, vf.matrix(0), None, &mut sc.acc);
            for (o, v) in o.iter_mut().zip(&sc.acc) {
                *o = T::from_f32(*v);
            }
            w
        })
    })
}
