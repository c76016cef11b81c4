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

/// Panels packed together by one task: B is read a row segment of this many panels at a
/// time, so that each row's read is contiguous (a single panel's 128-byte rows, 4 KiB or more
/// apart, defeat the hardware prefetcher: it follows streams within a page).
const PANELS_PER_GROUP: usize = 8;

/// [`pack_b`] into `out` (exactly `n.div_ceil(NR)·k·NR` elements, any contents: every
/// element is written, pads with zero).
pub(super) fn pack_b_into<T: FloatElem, const NR: usize>(
    k: usize,
    n: usize,
    b: MatRef<'_, T>,
    out: &mut [f32],
) {
    assert_eq!(out.len(), n.div_ceil(NR) * k * NR, "packed B buffer");
    // Panels g·PANELS_PER_GROUP.. of `group`, row by row: for each row of B, the group's
    // columns are read in one pass and written into each panel's row.
    // An f32 B is copied as it is (vector moves); other dtypes convert value by value.
    let b_f32 = T::as_f32s(b.data);
    let pack_group = |g: usize, group: &mut [f32]| {
        let first = g * PANELS_PER_GROUP;
        let mut panels: Vec<&mut [f32]> = group.chunks_exact_mut(k * NR).collect();
        for p in 0..k {
            for (i, panel) in panels.iter_mut().enumerate() {
                let j0 = (first + i) * NR;
                let width = NR.min(n - j0);
                let dst = &mut panel[p * NR..(p + 1) * NR];
                let row = b.offset + p * b.rs + j0 * b.cs;
                if b.cs == 1 && width == NR {
                    // A full row of a full panel: one fixed-size block.
                    if let Some(data) = b_f32 {
                        dst.copy_from_slice(&data[row..row + NR]);
                        continue;
                    }
                    let src: &[T; NR] = b.data[row..row + NR]
                        .try_into()
                        .expect("a slice of NR values");
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = s.to_f32();
                    }
                    continue;
                }
                dst[width..].fill(0.0);
                if b.cs == 1 {
                    for (d, s) in dst.iter_mut().zip(&b.data[row..row + width]) {
                        *d = s.to_f32();
                    }
                } else {
                    for (j, d) in dst[..width].iter_mut().enumerate() {
                        *d = b.data[row + j * b.cs].to_f32();
                    }
                }
            }
        }
    };
    let group_len = PANELS_PER_GROUP * k * NR;
    if k * n >= PARALLEL_PACK_MIN {
        out.par_chunks_mut(group_len)
            .enumerate()
            .for_each(|(g, group)| pack_group(g, group));
    } else {
        out.chunks_mut(group_len)
            .enumerate()
            .for_each(|(g, group)| pack_group(g, group));
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

#[cfg(test)]
mod tests {
    use half::f16;

    use super::{pack_b, MatRef, PANELS_PER_GROUP};

    /// Every packed element is B's (p, j), converted, and every pad is zero: row-major and
    /// transposed B, f32 and f16, one group and several, a partial last panel and none,
    /// small (packed on this thread) and large (packed on the pool).
    #[test]
    fn packed_b_holds_each_element_once_and_zero_pads() {
        const NR: usize = 32;
        let shapes = [
            (3, 5),
            (7, NR),
            (9, PANELS_PER_GROUP * NR + 1),
            (300, 3 * PANELS_PER_GROUP * NR - 5),
        ];
        for (k, n) in shapes {
            let value = |p: usize, j: usize| ((p * 31 + j * 7) % 61) as f32 - 30.0;
            let rows: Vec<f32> = (0..k * n).map(|i| value(i / n, i % n)).collect();
            let cols: Vec<f32> = (0..k * n).map(|i| value(i % k, i / k)).collect();
            let half_rows: Vec<f16> = rows.iter().map(|&v| f16::from_f32(v)).collect();
            let packs = [
                pack_b::<f32, NR>(k, n, MatRef::rows(&rows, 0, n)),
                pack_b::<f32, NR>(k, n, MatRef::transposed(&cols, 0, k)),
                pack_b::<f16, NR>(k, n, MatRef::rows(&half_rows, 0, n)),
            ];
            for (which, packed) in packs.iter().enumerate() {
                assert_eq!(packed.len(), n.div_ceil(NR) * k * NR);
                for (at, &got) in packed.iter().enumerate() {
                    let (jp, p, lane) = (at / (k * NR), at / NR % k, at % NR);
                    let j = jp * NR + lane;
                    let want = if j < n { value(p, j) } else { 0.0 };
                    assert_eq!(got, want, "pack {which}, k {k}, n {n}: (p {p}, j {j})");
                }
            }
        }
    }
}
