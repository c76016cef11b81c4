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
    let panels = n.div_ceil(NR);
    let mut out = Aligned::<f32>::zeroed(panels * k * NR);
    let pack_panel = |jp: usize, panel: &mut [f32]| {
        let j0 = jp * NR;
        let width = NR.min(n - j0);
        for p in 0..k {
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
    out
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
        for i in 0..MR {
            let r = ip * MR + i;
            if r >= count {
                for p in 0..kc {
                    panel[p * MR + i] = 0.0;
                }
                continue;
            }
            let base = a.offset + (rows.start + r) * a.rs + pc * a.cs;
            for p in 0..kc {
                panel[p * MR + i] = a.data[base + p * a.cs].to_f32();
            }
        }
    }
}
