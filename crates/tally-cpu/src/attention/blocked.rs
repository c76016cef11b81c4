//! Non-causal attention per (batch, head): gather the visible keys and values, then
//! S = Q·K_visᵀ and O = softmax(scale·S)·V_vis as two packed products in f32.

use tally_core::backend::AttentionParams;
use tally_core::{Counted, FloatElem, Layout, Work};

use crate::gemm::{gemm, MatRef};
use crate::softmax::softmax_row;
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
        let keys: Vec<usize> = (0..sk)
            .filter(|&j| mask.as_ref().is_none_or(|m| m[bi * sk + j] != 0))
            .collect();
        let n = keys.len();
        if n == 0 {
            o.iter_mut().for_each(|x| *x = T::default());
            return Work::ZERO;
        }
        let widen = |src: &[T]| src.iter().map(|x| x.to_f32()).collect::<Vec<f32>>();
        let qf = widen(&qs[bh * sq * d..(bh + 1) * sq * d]);
        let gather = |src: &[T]| {
            let mut g = Vec::with_capacity(n * d);
            for &j in &keys {
                g.extend(src[kv + j * d..kv + (j + 1) * d].iter().map(|x| x.to_f32()));
            }
            g
        };
        let (kf, vf) = (gather(&ks), gather(&vs));
        // S (s_q, n) = Q (s_q, d) · K_visᵀ (d, n): K_vis read with its rows as columns.
        let mut s = vec![0f32; sq * n];
        let qm = MatRef {
            data: &qf,
            offset: 0,
            rs: d,
            cs: 1,
        };
        let km = MatRef {
            data: &kf,
            offset: 0,
            rs: 1,
            cs: d,
        };
        let mut w = Work {
            fma: gemm(sq, n, d, qm, km, None, &mut s),
            ..Work::ZERO
        };
        for row in s.chunks_mut(n) {
            row.iter_mut().for_each(|x| *x *= p.scale);
            w += softmax_row(row)
                + Work {
                    mul: n as u64,
                    ..Work::ZERO
                };
        }
        // O (s_q, d) = P (s_q, n) · V_vis (n, d).
        let mut of = vec![0f32; sq * d];
        let pm = MatRef {
            data: &s,
            offset: 0,
            rs: n,
            cs: 1,
        };
        let vm = MatRef {
            data: &vf,
            offset: 0,
            rs: d,
            cs: 1,
        };
        w.fma += gemm(sq, d, n, pm, vm, None, &mut of);
        for (o, x) in o.iter_mut().zip(&of) {
            *o = T::from_f32(*x);
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
