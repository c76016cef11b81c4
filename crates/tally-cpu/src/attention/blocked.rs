//! Non-causal attention per (batch, head): gather the visible keys and values, then
//! S = Q·K_visᵀ and O = softmax(scale·S)·V_vis as two packed products in f32.

use tally_core::backend::AttentionParams;
use tally_core::{FloatElem, Work};

use super::Heads;
use crate::gemm::{gemm, MatRef};
use crate::softmax::softmax_row;
use crate::util::for_units;

/// Fills `out` (b, h, s_q, d) and returns the arithmetic work.
pub(super) fn run<T: FloatElem>(x: &Heads<'_, T>, p: AttentionParams, out: &mut [T]) -> Work {
    let (sq, sk, d) = (x.sq, x.sk, x.d);
    for_units(out, sq * d, 2 * sq * sk * d, |bh, o| {
        let kv = x.kv_base(bh);
        let keys: Vec<usize> = (0..sk).filter(|&j| x.visible(bh / x.h, j)).collect();
        let n = keys.len();
        if n == 0 {
            o.iter_mut().for_each(|v| *v = T::default());
            return Work::ZERO;
        }
        let qf: Vec<f32> = x.q[bh * sq * d..(bh + 1) * sq * d]
            .iter()
            .map(|v| v.to_f32())
            .collect();
        let gather = |src: &[T]| {
            let mut g = Vec::with_capacity(n * d);
            for &j in &keys {
                g.extend(src[kv + j * d..kv + (j + 1) * d].iter().map(|v| v.to_f32()));
            }
            g
        };
        let (kf, vf) = (gather(&x.k), gather(&x.v));
        // S (s_q, n) = Q (s_q, d) · K_visᵀ (d, n): K_vis read with its rows as columns.
        let mut s = vec![0f32; sq * n];
        let qm = MatRef::rows(&qf, 0, d);
        let km = MatRef::transposed(&kf, 0, d);
        let mut w = gemm(sq, n, d, qm, km, None, &mut s);
        for row in s.chunks_mut(n) {
            row.iter_mut().for_each(|v| *v *= p.scale);
            w += softmax_row(row)
                + Work {
                    mul: n as u64,
                    ..Work::ZERO
                };
        }
        // O (s_q, d) = P (s_q, n) · V_vis (n, d).
        let mut of = vec![0f32; sq * d];
        let pm = MatRef::rows(&s, 0, n);
        let vm = MatRef::rows(&vf, 0, d);
        w += gemm(sq, d, n, pm, vm, None, &mut of);
        for (o, v) in o.iter_mut().zip(&of) {
            *o = T::from_f32(*v);
        }
        w
    })
}
