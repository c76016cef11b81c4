//! Causal attention per (batch, head), in blocks of query rows. Queries are aligned to the
//! end of the keys, so row i sees the visible keys before position i + s_k − s_q + 1. In a
//! block, the keys every row sees (the rectangle) go through two packed products; each
//! row's few extra keys on the diagonal go through vector dot products and axpys. Masked
//! (future or padded) pairs are never computed, and each unit counts the pairs it visited:
//! 2·d FMAs and one scale mul per pair, plus the softmax of each row.

use tally_core::backend::AttentionParams;
use tally_core::{FloatElem, Work};

use super::diagonal::{axpys, scores};
use super::{with_scratch, Heads};
use crate::gemm::{detect, gemm, MatRef};
use crate::softmax::scaled_softmax_row;
use crate::util::for_units;

/// Query rows per block: the rectangle's products reach the packed GEMM's efficiency while
/// the diagonal's extra pairs (at most BLOCK − 1 per row) stay a small share.
const BLOCK: usize = 32;

/// Fills `out` (b, h, s_q, d) and returns the arithmetic work.
pub(super) fn run<T: FloatElem>(x: &Heads<'_, T>, p: AttentionParams, out: &mut [T]) -> Work {
    let (sq, sk, d) = (x.sq, x.sk, x.d);
    let isa = detect();
    for_units(out, sq * d, 2 * sq * sk * d, |bh, o| {
        with_scratch(|sc| {
            let bi = bh / x.h;
            // Visible key positions, ascending (only listed when a mask hides some), and
            // their rows in f32: read in place when nothing needs converting or skipping.
            sc.keys.clear();
            if x.mask.is_some() {
                sc.keys.extend((0..sk).filter(|&j| x.visible(bi, j)));
            }
            // A mask that hides nothing reads the rows as if there were none.
            let keys = x
                .mask
                .as_ref()
                .map(|_| sc.keys.as_slice())
                .filter(|k| k.len() < sk);
            let (kf, vf) = x.kv_rows(bh, keys, &mut sc.kf, &mut sc.vf);
            let qf = x.q_rows(bh, &mut sc.qf);
            // Row i sees the first `seen(i)` visible keys.
            let seen = |i: usize| {
                let end = (i + sk + 1).saturating_sub(sq).min(sk);
                keys.map_or(end, |k| k.partition_point(|&j| j < end))
            };
            let (probs, acc, s) = (&mut sc.probs, &mut sc.acc, &mut sc.s);
            let mut w = Work::ZERO;
            for i0 in (0..sq).step_by(BLOCK) {
                let i1 = (i0 + BLOCK).min(sq);
                let rows = i1 - i0;
                // A block of one row (a decode step) runs all its keys as dot products and
                // axpys, the same pairs and count as the product would, without its call.
                let rect = if rows == 1 { 0 } else { seen(i0) };
                let width = seen(i1 - 1);
                // Scores of the rectangle: S (rows, rect) = Q_blk · K[..rect]ᵀ, row stride
                // `width`.
                probs.clear();
                probs.resize(rows * width.max(1), 0f32);
                if rect > 0 {
                    s.clear();
                    s.resize(rows * rect, 0f32);
                    w += gemm(rows, rect, d, qf.matrix(i0), kf.columns(), None, s);
                    for (r, srow) in s.chunks(rect).enumerate() {
                        probs[r * width..r * width + rect].copy_from_slice(srow);
                    }
                }
                // The diagonal: each row's keys past the rectangle, then the softmax over
                // its row.
                for r in 0..rows {
                    let n = seen(i0 + r);
                    let row = &mut probs[r * width..r * width + n];
                    if n > rect {
                        scores(isa, qf.row(i0 + r), kf, rect..n, &mut row[rect..]);
                    }
                    w.fma += ((n - rect.min(n)) * d) as u64;
                    if n > 0 {
                        w += scaled_softmax_row(row, p.scale);
                    }
                }
                // O_blk (rows, d) = P[.., ..rect] · V[..rect], then each row's diagonal
                // axpys.
                acc.clear();
                acc.resize(rows * d, 0f32);
                if rect > 0 {
                    let pm = MatRef::rows(probs, 0, width);
                    w += gemm(rows, d, rect, pm, vf.matrix(0), None, acc);
                }
                for r in 0..rows {
                    let n = seen(i0 + r);
                    let probs = &probs[r * width..(r + 1) * width];
                    axpys(isa, probs, vf, rect..n, &mut acc[r * d..(r + 1) * d]);
                    w.fma += ((n - rect.min(n)) * d) as u64;
                }
                for (o, a) in o[i0 * d..i1 * d].iter_mut().zip(acc.iter()) {
                    *o = T::from_f32(*a);
                }
            }
            w
        })
    })
}
