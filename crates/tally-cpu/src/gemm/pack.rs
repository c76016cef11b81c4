//! Packing: copies A and B into the micro-kernel's panel order, converting to f32.

use rayon::prelude::*;
use tally_core::FloatElem;

use super::aligned::Aligned;
use super::MatRef;

/// B sizes (elements) from which panels are packed on the pool.
pub(super) const PARALLEL_PACK_MIN: usize = 1 << 16;

/// B (k, n) → panels of NR columns, each k rows of NR values (zero-padded at the edge).
/// Panel jp's row p starts at `(jp·k + p)·NR`.
pub(super) fn pack_b<T: FloatElem, const NR: usize>(
    k: usize,
    n: usize,
    b: MatRef<'_, T>,
) -> Aligned<f32> {
    let mut out = Aligned::<f32>::zeroed(n.div_ceil(NR) * k * NR);
    pack_b_into::<T, NR>(k, n, b, &mut out);
    out
}

/// [`pack_b`] into `out` (exactly `n.div_ceil(NR)·k·NR` elements, any contents: every
/// element is written, pads with zero).
pub(super) fn pack_b_into<T: FloatElem, const NR: usize>(
    k: usize,
    n: usize,
    b: MatRef<'_, T>,
    out: &mut [f32],
) {
    assert_eq!(out.len(), n.div_ceil(NR) * k * NR, "packed B buffer");
    let pack_panel = |jp: usize, panel: &mut [f32]| {
        let j0 = jp * NR;
        let width = NR.min(n - j0);
        for p in 0..k {
            panel[p * NR + width..(p + 1) * NR].fill(0.0);
            let dst = &mut panel[p * NR..][..width];
            let row = b.offset + p * b.rs + j0 * b.cs;
            if b.cs == 1 {
                for (d, s) in dst.iter_mut().zip(&b.data[row..row + width]) {
                    *d = s.to_f32();
                }
            } else {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = b.data[row + j * b.cs].to_f32();
                }
            }
        }
    };
    if k * n >= PARALLEL_PACK_MIN {
        out.par_chunks_mut(k * NR)
            .enumerate()
            .for_each(|(jp, panel)| pack_panel(jp, panel));
    } else {
        out.chunks_mut(k * NR)
            .enumerate()
            .for_each(|(jp, panel)| pack_panel(jp, panel));
    }
}

/// Rows `rows` × columns `pc..pc+kc` of A → MR-row micro-panels, each kc columns of MR
/// values (zero-padded past the last row). Micro-panel ip's column p starts at `(ip·kc + p)·MR`.
pub(super) fn pack_a<T: FloatElem, const MR: usize>(
    rows: std::ops::Range<usize>,
    pc: usize,
    kc: usize,
    a: MatRef<'_, T>,
    out: &mut [f32],
) {
    let count = rows.len();
    for ip in 0..count.div_ceil(MR) {
        let panel = &mut out[ip * MR * kc..(ip + 1) * MR * kc];
        let real = MR.min(count - ip * MR);
        let base = |i: usize| a.offset + (rows.start + ip * MR + i) * a.rs + pc * a.cs;
        if a.cs == 1 && real == MR {
            // Row-major and a full panel: MR contiguous row slices read side by side, the
            // panel written in order.
            let src: [&[T]; MR] = std::array::from_fn(|i| &a.data[base(i)..base(i) + kc]);
            for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                for (d, row) in col.iter_mut().zip(&src) {
                    *d = row[p].to_f32();
                }
            }
            continue;
        }
        for i in 0..MR {
            if i >= real {
                for p in 0..kc {
                    panel[p * MR + i] = 0.0;
                }
                continue;
            }
            let base = base(i);
            for p in 0..kc {
                panel[p * MR + i] = a.data[base + p * a.cs].to_f32();
            }
        }
    }
}
