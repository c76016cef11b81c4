//! Non-causal attention per (batch, head): gather the visible keys and values, then
//! S = Q·K_visᵀ and O = softmax(scale·S)·V_vis as two packed products in f32. bf16 heads
//! that see every key run both products on AMX where the host has it, Q, K and V read in
//! place, scores and outputs accumulated in f32 and the probabilities rounded to bf16 for
//! the second product (as flash-attention kernels do).

use half::bf16;
use tally_core::backend::AttentionParams;
use tally_core::{FloatElem, Work};

use super::{CallScratch, Heads, Scratch};
use crate::gemm::{amx, as_bf16, as_bf16_mut, detect_bf16, gemm, Bf16Isa, MatRef};
use crate::softmax::scaled_softmax_row;
use crate::util::for_units;

/// Fills `out` (b, h, s_q, d) and returns the arithmetic work.
pub(super) fn run<T: FloatElem>(x: &Heads<'_, T>, p: AttentionParams, out: &mut [T]) -> Work {
    let (sq, sk, d) = (x.sq, x.sk, x.d);
    let on_amx = sq >= AMX_MIN_QUERIES && sk > 0 && detect_bf16() == Bf16Isa::Amx;
    let scratch = CallScratch::default();
    for_units(out, sq * d, 2 * sq * sk * d, |bh, o| {
        scratch.with(|sc| {
            // Visible key positions (listed when there is a mask).
            sc.keys.clear();
            if x.mask.is_some() {
                sc.keys.extend((0..sk).filter(|&j| x.visible(bh / x.h, j)));
            }
            let hides_nothing = sc.keys.len() == sk;
            if on_amx && (x.mask.is_none() || hides_nothing) {
                if let Some(w) = amx_unit(x, bh, p, o, sc) {
                    return w;
                }
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
            // The product assigns every score, so the buffer is only grown, never refilled
            // (the fill was a pass over 64 KiB per MiniLM head).
            grow(&mut sc.s, sq * n, 0f32);
            let s = &mut sc.s[..sq * n];
            let mut w = gemm(sq, n, d, qf.matrix(0), kf.columns(), None, s);
            w += scaled_softmax(s, n, p.scale);
            // O (s_q, d) = P (s_q, n) · V_vis (n, d), straight into the output when it is
            // f32 (no accumulator held beside it), else through one rounded once.
            let pm = MatRef::rows(s, 0, n);
            if let Some(o) = T::as_f32s_mut(o) {
                return w + gemm(sq, d, n, pm, vf.matrix(0), None, o);
            }
            grow(&mut sc.acc, sq * d, 0f32);
            let acc = &mut sc.acc[..sq * d];
            w += gemm(sq, d, n, pm, vf.matrix(0), None, acc);
            for (o, v) in o.iter_mut().zip(acc.iter()) {
                *o = T::from_f32(*v);
            }
            w
        })
    })
}

/// Query rows from which a head runs on AMX: a block is 32 rows, and fewer than a tile's
/// 16 would mostly multiply padding.
const AMX_MIN_QUERIES: usize = 16;

/// softmax(scale·row) over each row of `n` scores, in place; the work it did.
fn scaled_softmax(s: &mut [f32], n: usize, scale: f32) -> Work {
    let mut w = Work::ZERO;
    for row in s.chunks_mut(n) {
        w += scaled_softmax_row(row, scale);
    }
    w
}

/// One head seeing every key, on AMX: `None` (nothing done) unless the operands are bf16.
fn amx_unit<T: FloatElem>(
    x: &Heads<'_, T>,
    bh: usize,
    p: AttentionParams,
    o: &mut [T],
    sc: &mut Scratch,
) -> Option<Work> {
    let (q, k, v) = (
        as_bf16(&x.q.data)?,
        as_bf16(&x.k.data)?,
        as_bf16(&x.v.data)?,
    );
    let o = as_bf16_mut(o)?;
    let (sq, sk, d) = (x.sq, x.sk, x.d);
    let (bi, hi) = (bh / x.h, bh % x.h);
    let kh = hi / (x.h / x.hk);
    let qm = MatRef::rows(q, x.q.base(bi, hi), x.q.sr);
    let kt = MatRef::transposed(k, x.k.base(bi, kh), x.k.sr);
    let vm = MatRef::rows(v, x.v.base(bi, kh), x.v.sr);
    // S (s_q, s_k) = Q · Kᵀ in f32; every element is written, so the buffers are only
    // grown, never cleared.
    grow(&mut sc.s, sq * sk, 0f32);
    let s = &mut sc.s[..sq * sk];
    let mut w = amx::gemm_to_f32(sq, sk, d, qm, kt, s);
    w += scaled_softmax(s, sk, p.scale);
    // O (s_q, d) = P · V, P rounded to bf16.
    grow(&mut sc.p16, sq * sk, bf16::ZERO);
    let p16 = &mut sc.p16[..sq * sk];
    amx::round_to_bf16(s, p16);
    grow(&mut sc.acc, sq * d, 0f32);
    let acc = &mut sc.acc[..sq * d];
    w += amx::gemm_to_f32(sq, d, sk, MatRef::rows(p16, 0, sk), vm, acc);
    amx::round_to_bf16(acc, o);
    Some(w)
}

/// `v` at least `len` long (new elements `fill`).
fn grow<E: Copy>(v: &mut Vec<E>, len: usize, fill: E) {
    if v.len() < len {
        v.resize(len, fill);
    }
}
