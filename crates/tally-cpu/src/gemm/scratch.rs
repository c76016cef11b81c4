//! Per-thread scratch for GEMM: the packed B of a call, and each task's packed A block and
//! f32 tile, kept between calls so that a product neither allocates nor faults in fresh
//! pages. A packed B above [`KEEP_B_MAX`] elements is freed after its call. A thread that
//! re-enters while its buffers are in use (a rayon worker that ran another product while
//! waiting) gets fresh ones for that call: correct, if slower.

use std::cell::RefCell;
use std::thread::LocalKey;

use super::aligned::Aligned;

/// Largest packed B (elements, 256 KiB of f32) a thread keeps for its next call: a larger
/// one would sit idle beside the activations of every later pass (peak-memory budget).
/// Measured: keeping up to 4 MiB spared a 512³ product the 2% it spends zeroing a fresh
/// packed B, and put SmolLM2's prefill at P − W = 1.30·A, over the 1.2·A bound.
const KEEP_B_MAX: usize = 1 << 16;

/// An element of packed panels: f32 for the f32 kernels, u32 (a bf16 pair) for bf16.
pub(super) trait PanelElem: Copy + Default + 'static {
    /// This thread's packed-A buffer of this element type.
    fn a_slot() -> &'static LocalKey<RefCell<Aligned<Self>>>;
    /// This thread's packed-B buffer of this element type.
    fn b_slot() -> &'static LocalKey<RefCell<Aligned<Self>>>;
}

thread_local! {
    static A_F32: RefCell<Aligned<f32>> = RefCell::new(Aligned::zeroed(0));
    static B_F32: RefCell<Aligned<f32>> = RefCell::new(Aligned::zeroed(0));
    static A_U32: RefCell<Aligned<u32>> = RefCell::new(Aligned::zeroed(0));
    static B_U32: RefCell<Aligned<u32>> = RefCell::new(Aligned::zeroed(0));
    static TILE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static OUT_BLOCK: RefCell<Aligned<f32>> = RefCell::new(Aligned::zeroed(0));
}

impl PanelElem for f32 {
    fn a_slot() -> &'static LocalKey<RefCell<Aligned<f32>>> {
        &A_F32
    }
    fn b_slot() -> &'static LocalKey<RefCell<Aligned<f32>>> {
        &B_F32
    }
}

impl PanelElem for u32 {
    fn a_slot() -> &'static LocalKey<RefCell<Aligned<u32>>> {
        &A_U32
    }
    fn b_slot() -> &'static LocalKey<RefCell<Aligned<u32>>> {
        &B_U32
    }
}

/// Runs `f` with the buffer in `slot`, grown to at least `len` elements and handed over
/// as exactly `len` (contents unspecified); dropped afterwards when longer than `keep`.
fn with_slot<E: PanelElem, R>(
    slot: &'static LocalKey<RefCell<Aligned<E>>>,
    len: usize,
    keep: usize,
    f: impl FnOnce(&mut [E]) -> R,
) -> R {
    slot.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                *buf = Aligned::zeroed(len);
            }
            let r = f(&mut buf[..len]);
            if buf.len() > keep {
                *buf = Aligned::zeroed(0);
            }
            r
        }
        Err(_) => f(&mut Aligned::zeroed(len)),
    })
}

/// Runs `f` with this thread's packed-A buffer (exactly `a_len` elements, contents
/// unspecified) and its tile vector (any length and contents; `f` sizes it).
pub(super) fn with<E: PanelElem, R>(
    a_len: usize,
    f: impl FnOnce(&mut [E], &mut Vec<f32>) -> R,
) -> R {
    with_slot(E::a_slot(), a_len, usize::MAX, |a| {
        TILE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut tile) => f(a, &mut tile),
            Err(_) => f(a, &mut Vec::new()),
        })
    })
}

/// Runs `f` with this thread's packed-B buffer of exactly `len` elements (contents
/// unspecified: the packer writes every one).
pub(super) fn with_b<E: PanelElem, R>(len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    with_slot(E::b_slot(), len, KEEP_B_MAX, f)
}

/// Runs `f` with this thread's buffer for one block of a transposed product's output
/// (exactly `len` elements, contents unspecified: the block's first slice of k stores
/// every one), kept for the next call.
pub(super) fn with_out_block<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_slot(&OUT_BLOCK, len, usize::MAX, f)
}
