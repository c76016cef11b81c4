//! Scaled-dot-product attention, one (batch, head) pair per work unit. Padded keys and (when
//! causal) future keys are never computed; each unit counts only the (query, key) pairs it
//! visited. Without a causal mask every query of a head sees the same keys, so the head runs
//! as two packed products over the visible keys ([`blocked`]); with one, rows differ, and
//! blocks of rows share a rectangle of keys run as packed products plus a short diagonal
//! ([`causal`]).

mod blocked;
mod causal;
mod diagonal;

use std::cell::RefCell;

use tally_core::backend::AttentionParams;
use tally_core::{Counted, DType, FloatElem, Layout, Work};

use crate::buffers;
use crate::gemm::MatRef;
use crate::util::{bytes, contiguous, Contig};

/// One operand (b, heads, s, d), read in place: row j of (batch bi, head hi) is the d
/// elements from `off + bi·sb + hi·sh + j·sr`. Only a view whose last dimension is strided
/// is gathered first.
pub(super) struct Operand<'a, T: 'static> {
    data: Contig<'a, T>,
    off: usize,
    sb: usize,
    sh: usize,
    sr: usize,
}

impl<'a, T: Copy + 'static> Operand<'a, T> {
    fn new(data: &'a [T], l: &Layout) -> Operand<'a, T> {
        let (dims, st) = (l.dims(), l.strides());
        let (h, s, d) = (dims[1], dims[2], dims[3]);
        if d <= 1 || st[3] == 1 {
            Operand {
                data: Contig::Borrowed(data),
                off: l.offset(),
                sb: st[0],
                sh: st[1],
                sr: if s <= 1 { d } else { st[2] },
            }
        } else {
            Operand {
                data: contiguous(data, l),
                off: 0,
                sb: h * s * d,
                sh: s * d,
                sr: d,
            }
        }
    }

    /// Offset of row 0 of (batch `bi`, head `hi`).
    fn base(&self, bi: usize, hi: usize) -> usize {
        self.off + bi * self.sb + hi * self.sh
    }
}

/// The operands with their geometry: q (b, h, s_q, d) over k, v (b, h_kv, s_k, d), query
/// head `hi` reading kv head `hi / group`.
pub(super) struct Heads<'a, T: 'static> {
    q: Operand<'a, T>,
    k: Operand<'a, T>,
    v: Operand<'a, T>,
    mask: Option<Vec<u32>>,
    h: usize,
    hk: usize,
    sq: usize,
    sk: usize,
    d: usize,
}

impl<T: FloatElem> Heads<'_, T> {
    /// The s_q query rows of (batch·h + head) `bh` in f32: in place when they are dense
    /// f32, else converted into `dst`.
    fn q_rows<'s>(&'s self, bh: usize, dst: &'s mut Vec<f32>) -> Rows<'s> {
        let base = self.q.base(bh / self.h, bh % self.h);
        rows_f32(&self.q, base, None, self.sq, self.d, dst)
    }

    /// The visible key and value rows that (batch·h + head) `bh` reads (`keys`, or all s_k
    /// when `None`) in f32: in place when they are dense f32, else gathered into `kd`, `vd`.
    fn kv_rows<'s>(
        &'s self,
        bh: usize,
        keys: Option<&[usize]>,
        kd: &'s mut Vec<f32>,
        vd: &'s mut Vec<f32>,
    ) -> (Rows<'s>, Rows<'s>) {
        let (bi, hi) = (bh / self.h, bh % self.h);
        let kh = hi / (self.h / self.hk);
        let k = rows_f32(&self.k, self.k.base(bi, kh), keys, self.sk, self.d, kd);
        let v = rows_f32(&self.v, self.v.base(bi, kh), keys, self.sk, self.d, vd);
        (k, v)
    }

    /// Whether key `j` of batch row `bi` may be attended (no mask: all may).
    fn visible(&self, bi: usize, j: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[bi * self.sk + j] != 0)
    }
}

/// Rows of d f32 values, `stride` apart from the start of `data`: an operand's own rows
/// read in place (a head of a fused projection, its rows strided), or rows gathered densely.
#[derive(Clone, Copy)]
pub(super) struct Rows<'s> {
    data: &'s [f32],
    stride: usize,
    d: usize,
}

impl<'s> Rows<'s> {
    /// Row j.
    fn row(&self, j: usize) -> &'s [f32] {
        &self.data[j * self.stride..j * self.stride + self.d]
    }

    /// Rows from `first` as the rows of a matrix (j, d).
    fn matrix(&self, first: usize) -> MatRef<'s, f32> {
        MatRef::rows(self.data, first * self.stride, self.stride)
    }

    /// The rows as the columns of a matrix (d, j): the transpose for Q·Kᵀ.
    fn columns(&self) -> MatRef<'s, f32> {
        MatRef::transposed(self.data, 0, self.stride)
    }
}

/// Rows `keys` (all `n` when `None`) of d elements from `base`, `x.sr` apart, as f32: the
/// operand's own rows, strided, when they already are f32 and all are read, else widened
/// (or gathered) densely into `dst`.
fn rows_f32<'s, T: FloatElem>(
    x: &'s Operand<'_, T>,
    base: usize,
    keys: Option<&[usize]>,
    n: usize,
    d: usize,
    dst: &'s mut Vec<f32>,
) -> Rows<'s> {
    if keys.is_none() && n > 0 {
        let stride = if n <= 1 { d } else { x.sr };
        if let Some(data) = T::as_f32s(&x.data[base..base + (n - 1) * stride + d]) {
            return Rows { data, stride, d };
        }
    }
    dst.clear();
    // Room for twice the rows when it must grow: a KV cache grows by one row per decode
    // step, and a buffer sized exactly at the prompt (8,192 values for 128 keys of 64)
    // doubled on the first step after it, on whichever pool worker ran that step's pass
    // (a 64 KiB allocation per operand in a decode step, on the worker that had not yet).
    // The prompt's pass runs its heads on every worker, so each one gets the room then.
    let need = keys.map_or(n, <[usize]>::len) * d;
    if dst.capacity() < need {
        dst.reserve_exact(2 * need);
    }
    let mut row = |j: usize| {
        let at = base + j * x.sr;
        dst.extend(x.data[at..at + d].iter().map(|v| v.to_f32()));
    };
    match keys {
        None => (0..n).for_each(&mut row),
        Some(keys) => keys.iter().for_each(|&j| row(j)),
    }
    Rows {
        data: dst,
        stride: d,
        d,
    }
}

/// f32 scratch of the attention units (gathered keys and values, converted queries,
/// scores, accumulators), reused from unit to unit.
#[derive(Default)]
pub(super) struct Scratch {
    kf: Vec<f32>,
    vf: Vec<f32>,
    qf: Vec<f32>,
    s: Vec<f32>,
    probs: Vec<f32>,
    acc: Vec<f32>,
    keys: Vec<usize>,
    /// The probabilities rounded to bf16, for the AMX product with V.
    p16: Vec<half::bf16>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch, which outlives the call: what causal attention
/// uses, as its sizes change with every decode step and a step must not allocate. It is
/// taken out for the call and put back after, so a unit that the pool runs on this thread
/// while `f` waits (work stealing inside a nested GEMM) gets fresh vectors instead of a
/// double borrow.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let r = f(&mut s);
    SCRATCH.with(|c| *c.borrow_mut() = s);
    r
}

/// Scratch that lives as long as one attention call: each unit takes a set (or makes one)
/// and gives it back, so there are about as many as threads, and all are freed when the
/// call ends. What non-causal attention uses: a MiniLM head's score block is 64 KiB per
/// thread, and held per thread it stayed allocated through the feed-forward products, the
/// pass's peak (1.2× the live activations bounds it; see the `peak_memory` test).
#[derive(Default)]
pub(super) struct CallScratch(std::sync::Mutex<Vec<Scratch>>);

impl CallScratch {
    /// Runs `f` with a set of this call's scratch.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        let mut s = self.sets().pop().unwrap_or_default();
        let r = f(&mut s);
        self.sets().push(s);
        r
    }

    fn sets(&self) -> std::sync::MutexGuard<'_, Vec<Scratch>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
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
        q: Operand::new(q.0, q.1),
        k: Operand::new(k.0, k.1),
        v: Operand::new(v.0, v.1),
        mask: mask.map(|(m, l)| contiguous(m, l).into_owned()),
        h: qd[1],
        hk: kd[1],
        sq: qd[2],
        sk: kd[2],
        d: qd[3],
    };
    // Every (batch, head) unit writes its rows whole (zeros for a row that sees no key).
    let mut out = buffers::for_overwrite(q.1.shape().elem_count(), T::default());
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
    let read = out.len() + k.1.shape().elem_count() + v.1.shape().elem_count();
    let work = work.with_bytes(
        bytes(read, T::DTYPE) + mask_bytes,
        bytes(out.len(), T::DTYPE),
    );
    if let Some(m) = heads.mask {
        buffers::give(m);
    }
    Counted::executed(out, work)
}
