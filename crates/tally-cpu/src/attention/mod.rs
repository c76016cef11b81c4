//! Scaled-dot-product attention, one (batch, head) pair per work unit. Padded keys and (when
//! causal) future keys are never computed; each unit counts only the (query, key) pairs it
//! visited. Without a causal mask every query of a head sees the same keys, so the head runs
//! as two packed products over the visible keys ([`blocked`]); with one, rows differ, and
//! blocks of rows share a rectangle of keys run as packed products plus a short diagonal
//! ([`causal`]).

mod blocked;
mod causal;

use std::cell::RefCell;

use tally_core::backend::AttentionParams;
use tally_core::{Counted, DType, FloatElem, Layout, Work};

use crate::buffers;
use crate::util::{bytes, contiguous, Contig};

/// The operands with their geometry: q (b, h, s_q, d) read contiguously, k and v
/// (b, h_kv, s_k, d) read in place when each head's rows are one dense run (a KV cache's
/// (b, h_kv, capacity, d) buffer narrowed to its filled positions is), else gathered;
/// query head `hi` reads kv head `hi / group`.
pub(super) struct Heads<'a, T: 'static> {
    q: Contig<'a, T>,
    k: Contig<'a, T>,
    v: Contig<'a, T>,
    /// Offset of the first kv head's rows, and the strides between batch rows and between
    /// kv heads, in k's and v's elements.
    kv_at: [(usize, usize, usize); 2],
    mask: Option<Vec<u32>>,
    h: usize,
    hk: usize,
    sq: usize,
    sk: usize,
    d: usize,
}

impl<T> Heads<'_, T> {
    /// Offsets of the k rows and the v rows that (batch·h + head) `bh` reads: s_k rows of
    /// d elements each, dense, from there.
    fn kv_base(&self, bh: usize) -> (usize, usize) {
        let (bi, hi) = (bh / self.h, bh % self.h);
        let kh = hi / (self.h / self.hk);
        let at = |(off, sb, sh): (usize, usize, usize)| off + bi * sb + kh * sh;
        (at(self.kv_at[0]), at(self.kv_at[1]))
    }

    /// Whether key `j` of batch row `bi` may be attended (no mask: all may).
    fn visible(&self, bi: usize, j: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[bi * self.sk + j] != 0)
    }
}

/// A k or v operand (b, h_kv, s_k, d): in place, with (offset, batch stride, head stride),
/// when each head's s_k rows of d elements are one dense run; else gathered contiguous.
fn kv_view<'a, T: Copy + 'static>(
    data: &'a [T],
    l: &Layout,
) -> (Contig<'a, T>, (usize, usize, usize)) {
    let (dims, st) = (l.dims(), l.strides());
    let (sk, d) = (dims[2], dims[3]);
    let rows_dense = (d <= 1 || st[3] == 1) && (sk <= 1 || st[2] == d);
    if rows_dense {
        (Contig::Borrowed(data), (l.offset(), st[0], st[1]))
    } else {
        (contiguous(data, l), (0, dims[1] * sk * d, sk * d))
    }
}

/// Per-thread f32 scratch of the attention units (gathered keys and values, converted
/// queries, scores, accumulators), reused from call to call: its sizes change with every
/// decode step, so it is not worth pooling by size.
#[derive(Default)]
pub(super) struct Scratch {
    kf: Vec<f32>,
    vf: Vec<f32>,
    qf: Vec<f32>,
    s: Vec<f32>,
    probs: Vec<f32>,
    acc: Vec<f32>,
    keys: Vec<usize>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch. It is taken out for the call and put back after,
/// so a unit that the pool runs on this thread while `f` waits (work stealing inside a
/// nested GEMM) gets fresh vectors instead of a double borrow.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let r = f(&mut s);
    SCRATCH.with(|c| *c.borrow_mut() = s);
    r
}

/// `dst` cleared and filled with the rows `keys` (all s_k rows when `None`) of d elements
/// from `base`, widened to f32.
pub(super) fn gather_rows<T: FloatElem>(
    dst: &mut Vec<f32>,
    src: &[T],
    base: usize,
    keys: Option<&[usize]>,
    sk: usize,
    d: usize,
) {
    dst.clear();
    match keys {
        None => dst.extend(src[base..base + sk * d].iter().map(|v| v.to_f32())),
        Some(keys) => {
            for &j in keys {
                dst.extend(
                    src[base + j * d..base + (j + 1) * d]
                        .iter()
                        .map(|v| v.to_f32()),
                );
            }
        }
    }
}

/// The s_k rows of d elements from `base` as f32 in place, when `T` is f32 and every key is
/// visible: no gather is needed.
pub(super) fn rows_in_place<T: FloatElem>(
    src: &[T],
    base: usize,
    all_visible: bool,
    sk: usize,
    d: usize,
) -> Option<&[f32]> {
    all_visible
        .then(|| T::as_f32s(&src[base..base + sk * d]))
        .flatten()
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
    let (kc, k_at) = kv_view(k.0, k.1);
    let (vc, v_at) = kv_view(v.0, v.1);
    let heads = Heads {
        q: contiguous(q.0, q.1),
        k: kc,
        v: vc,
        kv_at: [k_at, v_at],
        mask: mask.map(|(m, l)| contiguous(m, l).into_owned()),
        h: qd[1],
        hk: kd[1],
        sq: qd[2],
        sk: kd[2],
        d: qd[3],
    };
    // Every (batch, head) unit writes its rows whole (zeros for a row that sees no key).
    let mut out = buffers::for_overwrite(heads.q.len(), T::default());
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
    let read = heads.q.len() + k.1.shape().elem_count() + v.1.shape().elem_count();
    let work = work.with_bytes(
        bytes(read, T::DTYPE) + mask_bytes,
        bytes(out.len(), T::DTYPE),
    );
    if let Some(m) = heads.mask {
        buffers::give(m);
    }
    Counted::executed(out, work)
}
