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

/// Rows of B ahead of the one being copied whose lines are asked for (software prefetch):
/// the loads of B held most of the copy's samples without it.
#[cfg(target_arch = "x86_64")]
const AHEAD: usize = 4;

/// Fewest rows of B one piece of a parallel pack covers.
const ROWS_PER_PIECE_MIN: usize = 8;

/// [`pack_b`] into `out` (exactly `n.div_ceil(NR)·k·NR` elements, any contents: every
/// element is written, pads with zero).
///
/// The work is split by rows of B, not by panels: each piece packs rows `p0..p1` of every
/// panel, so a row-major B is read front to back as one contiguous stream. (Split by
/// panels, a piece read 1 KiB of every 2 KiB row of a 512-wide B, a pattern the hardware
/// prefetcher followed poorly: the loads of B held most of the packing's samples, and
/// packing took 8–10% of a 512³ product.)
pub(super) fn pack_b_into<T: FloatElem, const NR: usize>(
    k: usize,
    n: usize,
    b: MatRef<'_, T>,
    out: &mut [f32],
) {
    assert_eq!(out.len(), n.div_ceil(NR) * k * NR, "packed B buffer");
    if out.is_empty() {
        return;
    }
    let pieces = if k * n >= PARALLEL_PACK_MIN {
        (2 * rayon::current_num_threads()).min(k.div_ceil(ROWS_PER_PIECE_MIN))
    } else {
        1
    };
    let rows_per = k.div_ceil(pieces.max(1));
    // Piece c holds, for every panel, that panel's rows c·rows_per.. (disjoint slices).
    let mut parts: Vec<Vec<&mut [f32]>> = (0..k.div_ceil(rows_per))
        .map(|_| Vec::with_capacity(n.div_ceil(NR)))
        .collect();
    for panel in out.chunks_exact_mut(k * NR) {
        for (c, rows) in panel.chunks_mut(rows_per * NR).enumerate() {
            parts[c].push(rows);
        }
    }
    let pack = |(c, mut panels): (usize, Vec<&mut [f32]>)| {
        pack_b_rows::<T, NR>(c * rows_per, n, b, &mut panels)
    };
    if parts.len() > 1 {
        parts.into_par_iter().enumerate().for_each(pack);
    } else {
        parts.into_iter().enumerate().for_each(pack);
    }
}

/// Rows `p0..p0 + panels[0].len() / NR` of B into the matching rows of each panel
/// (`panels[jp]` holds panel jp's rows from p0 on).
fn pack_b_rows<T: FloatElem, const NR: usize>(
    p0: usize,
    n: usize,
    b: MatRef<'_, T>,
    panels: &mut [&mut [f32]],
) {
    let rows = panels.first().map_or(0, |p| p.len() / NR);
    #[cfg(target_arch = "x86_64")]
    if let Some(data) = T::as_f32s(b.data) {
        if b.cs == 1 && is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            unsafe { copy_rows_avx512::<NR>(p0, rows, n, data, b.offset, b.rs, panels) };
            return;
        }
        if b.rs == 1 && NR.is_multiple_of(8) && is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            let bf = b.with_data(data);
            let done = unsafe { transpose_cols_avx512::<NR>(p0, rows, n, bf, panels) };
            finish_rows::<T, NR>(p0, done, rows, n, b, panels);
            return;
        }
    }
    if b.rs == 1 && b.cs != 1 && T::as_f32s(b.data).is_none() {
        convert_columns::<T, NR>(p0, rows, n, b, panels);
        return;
    }
    finish_rows::<T, NR>(p0, 0, rows, n, b, panels);
}

/// Rows `p0..p0 + rows` of a B that is not f32 and is stored transposed (each column's k
/// values contiguous, a tied embedding read as a head): each column's run converted at
/// once (F16C for f16, instead of a call per element), then spread down its panel column.
/// Columns past n are zero.
fn convert_columns<T: FloatElem, const NR: usize>(
    p0: usize,
    rows: usize,
    n: usize,
    b: MatRef<'_, T>,
    panels: &mut [&mut [f32]],
) {
    const RUN: usize = 256;
    let mut buf = [0f32; RUN];
    for (jp, panel) in panels.iter_mut().enumerate() {
        let j0 = jp * NR;
        let width = NR.min(n - j0);
        for jj in 0..width {
            let column = b.offset + (j0 + jj) * b.cs + p0;
            for r0 in (0..rows).step_by(RUN) {
                let len = RUN.min(rows - r0);
                T::convert_to_f32(&b.data[column + r0..column + r0 + len], &mut buf[..len]);
                for (r, &v) in buf[..len].iter().enumerate() {
                    panel[(r0 + r) * NR + jj] = v;
                }
            }
        }
        if width < NR {
            for r in 0..rows {
                panel[r * NR + width..(r + 1) * NR].fill(0.0);
            }
        }
    }
}

/// Rows `p0 + from..p0 + to` of B into the matching rows of each panel, value by value
/// (any dtype and strides); columns past n are zero.
fn finish_rows<T: FloatElem, const NR: usize>(
    p0: usize,
    from: usize,
    to: usize,
    n: usize,
    b: MatRef<'_, T>,
    panels: &mut [&mut [f32]],
) {
    for r in from..to {
        let p = p0 + r;
        for (jp, panel) in panels.iter_mut().enumerate() {
            let j0 = jp * NR;
            let width = NR.min(n - j0);
            let dst = &mut panel[r * NR..(r + 1) * NR];
            let row = b.offset + p * b.rs + j0 * b.cs;
            dst[width..].fill(0.0);
            if b.cs == 1 {
                T::convert_to_f32(&b.data[row..row + width], &mut dst[..width]);
            } else {
                for (j, d) in dst[..width].iter_mut().enumerate() {
                    *d = b.data[row + j * b.cs].to_f32();
                }
            }
        }
    }
}

/// [`pack_b_rows`] for a row-major f32 B, compiled for AVX-512: a full panel row is one
/// fixed-size block copy (two 64-byte moves for NR = 32), the last panel's row is copied
/// and zero-padded. Each copy asks for the same columns [`AHEAD`] rows on.
///
/// # Safety
/// AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_rows_avx512<const NR: usize>(
    p0: usize,
    rows: usize,
    n: usize,
    data: &[f32],
    offset: usize,
    rs: usize,
    panels: &mut [&mut [f32]],
) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    for r in 0..rows {
        let row = offset + (p0 + r) * rs;
        let src = &data[row..row + n];
        // The same columns AHEAD rows on, asked for as this row is copied.
        let ahead = data.as_ptr().wrapping_add(row + AHEAD * rs);
        for (jp, (panel, seg)) in panels.iter_mut().zip(src.chunks(NR)).enumerate() {
            for line in (0..NR).step_by(16) {
                // A prefetch never faults, wherever it points.
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(jp * NR + line) as *const i8);
            }
            let dst = &mut panel[r * NR..(r + 1) * NR];
            match <&[f32; NR]>::try_from(seg) {
                Ok(full) => dst.copy_from_slice(full),
                Err(_) => {
                    dst[..seg.len()].copy_from_slice(seg);
                    dst[seg.len()..].fill(0.0);
                }
            }
        }
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
            // Columns already packed by the vector transpose (none without AVX-512).
            #[cfg(target_arch = "x86_64")]
            let done = match as_f32_rows::<T, MR>(&src) {
                Some(rows8) if is_x86_feature_detected!("avx512f") => {
                    // The next micro-panel's rows (those that exist), asked for while
                    // this one is transposed.
                    let next: [*const T; 8] = std::array::from_fn(|i| {
                        let r = rows.start + (ip + 1) * MR + i;
                        if r < rows.end {
                            a.data.as_ptr().wrapping_add(a.offset + r * a.rs + pc)
                        } else {
                            std::ptr::null()
                        }
                    });
                    let next = next.map(|p| p as *const f32);
                    // SAFETY: AVX-512F was detected just above; MR = 8 rows of kc values.
                    unsafe { transpose_8_avx512(&rows8, kc, panel, &next) }
                }
                _ => 0,
            };
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            for (p, col) in panel.chunks_exact_mut(MR).enumerate().skip(done) {
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

/// The first eight rows of `src` as f32 slices, when `T` is f32 and there are eight.
#[cfg(target_arch = "x86_64")]
fn as_f32_rows<'a, T: FloatElem, const MR: usize>(src: &[&'a [T]; MR]) -> Option<[&'a [f32]; 8]> {
    if MR != 8 {
        return None;
    }
    let mut rows: [&[f32]; 8] = [&[]; 8];
    for (r, s) in rows.iter_mut().zip(src) {
        *r = T::as_f32s(s)?;
    }
    Some(rows)
}

/// Eight rows of at least `kc` values → `panel` in column order (column p's eight values
/// at `8·p..8·p + 8`), 16 columns at a time: eight row loads, [`transpose_8x16`] and eight
/// 64-byte stores, where the scalar loop made one load and one store per value. Returns
/// the columns done (a multiple of 16; the caller finishes the rest).
///
/// Each block also asks for the same 16 columns of `next` (the next micro-panel's rows;
/// null for none) into L1, one line per row: A's rows are short streams (1 KiB of each, 8
/// at a time) that the hardware prefetcher barely starts on, and the transpose's own loads
/// held most of its samples.
///
/// # Safety
/// AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_8_avx512(
    rows: &[&[f32]; 8],
    kc: usize,
    panel: &mut [f32],
    next: &[*const f32; 8],
) -> usize {
    use std::arch::x86_64::*;
    let blocks = kc / 16;
    assert!(rows.iter().all(|r| r.len() >= blocks * 16) && panel.len() >= blocks * 128);
    for blk in 0..blocks {
        let p = blk * 16;
        // SAFETY: columns p..p + 16 of each row and values 8p..8p + 128 of the panel are
        // in bounds (asserted above).
        unsafe {
            for row in next.iter().filter(|r| !r.is_null()) {
                // A prefetch never faults, wherever it points.
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(p) as *const i8);
            }
            let r: [__m512; 8] = std::array::from_fn(|i| _mm512_loadu_ps(rows[i].as_ptr().add(p)));
            let (x, y) = transpose_8x16(r);
            // Columns in order, two per register.
            let out = [
                _mm512_shuffle_f32x4::<0x44>(x[0], x[1]), // 0, 1
                _mm512_shuffle_f32x4::<0x44>(x[2], x[3]), // 2, 3
                _mm512_shuffle_f32x4::<0xEE>(x[0], x[1]), // 4, 5
                _mm512_shuffle_f32x4::<0xEE>(x[2], x[3]), // 6, 7
                _mm512_shuffle_f32x4::<0x44>(y[0], y[1]), // 8, 9
                _mm512_shuffle_f32x4::<0x44>(y[2], y[3]), // 10, 11
                _mm512_shuffle_f32x4::<0xEE>(y[0], y[1]), // 12, 13
                _mm512_shuffle_f32x4::<0xEE>(y[2], y[3]), // 14, 15
            ];
            let dst = panel.as_mut_ptr().add(8 * p);
            for (q, v) in out.into_iter().enumerate() {
                _mm512_storeu_ps(dst.add(16 * q), v);
            }
        }
    }
    blocks * 16
}

/// A transposed f32 B (columns contiguous: B(p, j) at `offset + p + j·cs`) into rows
/// `p0..p0 + rows` of each panel, 16 rows by 8 columns at a time: eight column loads,
/// [`transpose_8x16`], and each row's eight values stored at its place in the panel (the
/// scalar loop read one value per step, `cs` apart). Columns past n are zero. Returns the
/// rows done (a multiple of 16); the caller finishes the rest.
///
/// # Safety
/// AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_cols_avx512<const NR: usize>(
    p0: usize,
    rows: usize,
    n: usize,
    b: MatRef<'_, f32>,
    panels: &mut [&mut [f32]],
) -> usize {
    use std::arch::x86_64::*;
    let blocks = rows / 16;
    for (jp, panel) in panels.iter_mut().enumerate() {
        assert!(panel.len() >= blocks * 16 * NR, "panel rows");
        let base = panel.as_mut_ptr();
        for g in 0..NR / 8 {
            let j0 = jp * NR + 8 * g;
            // Column j0 + i's rows of this piece, or none past n.
            let cols: [Option<&[f32]>; 8] = std::array::from_fn(|i| {
                let at = b.offset + p0 + (j0 + i) * b.cs;
                (j0 + i < n).then(|| &b.data[at..at + blocks * 16])
            });
            for blk in 0..blocks {
                let p = blk * 16;
                // SAFETY: each column slice holds blocks·16 values, and rows p..p + 16 of
                // the panel hold NR values each (asserted).
                unsafe {
                    let r: [__m512; 8] = std::array::from_fn(|i| match cols[i] {
                        Some(c) => _mm512_loadu_ps(c.as_ptr().add(p)),
                        None => _mm512_setzero_ps(),
                    });
                    let (x, y) = transpose_8x16(r);
                    // x[j]: rows j and 4 + j (eight columns each); y[j]: 8 + j, 12 + j.
                    let at = |row: usize| base.add((p + row) * NR + 8 * g);
                    for j in 0..4 {
                        for (v, row) in [(x[j], j), (y[j], 8 + j)] {
                            _mm512_mask_storeu_ps(at(row), 0x00FF, v);
                            // The upper eight lanes land on row + 4's eight values.
                            _mm512_mask_storeu_ps(at(row + 4).sub(8), 0xFF00, v);
                        }
                    }
                }
            }
        }
    }
    blocks * 16
}

/// Transposes eight registers of 16 values (rows 0–7, columns 0–15) in registers: returns
/// `x[j]` holding columns j and 4 + j, `y[j]` columns 8 + j and 12 + j, each column's
/// eight row values in order (unpacks, in-lane shuffles, two-source permutes).
///
/// # Safety
/// AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn transpose_8x16(
    r: [std::arch::x86_64::__m512; 8],
) -> (
    [std::arch::x86_64::__m512; 4],
    [std::arch::x86_64::__m512; 4],
) {
    use std::arch::x86_64::*;
    // Lanes 0 and 1 (then 2 and 3) of two registers, interleaved a, b, a, b.
    let low = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    let high = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    // Per 128-bit lane L (columns 4L..4L + 4): pairs of rows interleaved.
    let t0 = _mm512_unpacklo_ps(r[0], r[1]);
    let t1 = _mm512_unpackhi_ps(r[0], r[1]);
    let t2 = _mm512_unpacklo_ps(r[2], r[3]);
    let t3 = _mm512_unpackhi_ps(r[2], r[3]);
    let t4 = _mm512_unpacklo_ps(r[4], r[5]);
    let t5 = _mm512_unpackhi_ps(r[4], r[5]);
    let t6 = _mm512_unpacklo_ps(r[6], r[7]);
    let t7 = _mm512_unpackhi_ps(r[6], r[7]);
    // u[j] lane L: rows 0–3 of column 4L + j; u[4 + j]: rows 4–7.
    let u = [
        _mm512_shuffle_ps::<0x44>(t0, t2),
        _mm512_shuffle_ps::<0xEE>(t0, t2),
        _mm512_shuffle_ps::<0x44>(t1, t3),
        _mm512_shuffle_ps::<0xEE>(t1, t3),
        _mm512_shuffle_ps::<0x44>(t4, t6),
        _mm512_shuffle_ps::<0xEE>(t4, t6),
        _mm512_shuffle_ps::<0x44>(t5, t7),
        _mm512_shuffle_ps::<0xEE>(t5, t7),
    ];
    let x = std::array::from_fn(|j| _mm512_permutex2var_ps(u[j], low, u[4 + j]));
    let y = std::array::from_fn(|j| _mm512_permutex2var_ps(u[j], high, u[4 + j]));
    (x, y)
}

#[cfg(test)]
mod tests {
    use half::f16;

    use tally_core::FloatElem;

    use super::{pack_a, pack_b, pack_b_into, MatRef};

    /// Every packed element is B's (p, j), converted, and every pad is zero: row-major and
    /// transposed B, f32 and f16 (both layouts), one panel and several, a partial last panel and none,
    /// small (packed on this thread in one piece) and large (packed on the pool in pieces
    /// of rows, the last one short), pieces of whole 16-row blocks and a tail, at the
    /// panel widths of the AVX-512 and AVX2 kernels.
    #[test]
    fn packed_b_holds_each_element_once_and_zero_pads() {
        check_pack_b::<48>();
        check_pack_b::<32>();
        check_pack_b::<16>();
    }

    fn check_pack_b<const NR: usize>() {
        let shapes = [
            (3, 5),
            (7, NR),
            (9, 8 * NR + 1),
            (40, NR + 8),
            (300, 24 * NR - 5),
            (301, 7 * NR),
        ];
        for (k, n) in shapes {
            let value = |p: usize, j: usize| ((p * 31 + j * 7) % 61) as f32 - 30.0;
            let rows: Vec<f32> = (0..k * n).map(|i| value(i / n, i % n)).collect();
            let cols: Vec<f32> = (0..k * n).map(|i| value(i % k, i / k)).collect();
            let half_rows: Vec<f16> = rows.iter().map(|&v| f16::from_f32(v)).collect();
            let half_cols: Vec<f16> = cols.iter().map(|&v| f16::from_f32(v)).collect();
            // Into NaN, so that an element the packer skips shows (pads included).
            fn packed<T: FloatElem, const NR: usize>(k: usize, n: usize, b: MatRef<T>) -> Vec<f32> {
                let mut out = vec![f32::NAN; n.div_ceil(NR) * k * NR];
                pack_b_into::<T, NR>(k, n, b, &mut out);
                out
            }
            let packs = [
                pack_b::<f32, NR>(k, n, MatRef::rows(&rows, 0, n)).to_vec(),
                packed::<f32, NR>(k, n, MatRef::rows(&rows, 0, n)),
                packed::<f32, NR>(k, n, MatRef::transposed(&cols, 0, k)),
                packed::<f16, NR>(k, n, MatRef::rows(&half_rows, 0, n)),
                // Each column's run converted at once (convert_columns).
                packed::<f16, NR>(k, n, MatRef::transposed(&half_cols, 0, k)),
            ];
            for (which, packed) in packs.iter().enumerate() {
                assert_eq!(packed.len(), n.div_ceil(NR) * k * NR);
                for (at, &got) in packed.iter().enumerate() {
                    let (jp, p, lane) = (at / (k * NR), at / NR % k, at % NR);
                    let j = jp * NR + lane;
                    let want = if j < n { value(p, j) } else { 0.0 };
                    assert_eq!(
                        got, want,
                        "NR {NR}, pack {which}, k {k}, n {n}: (p {p}, j {j})"
                    );
                }
            }
        }
    }

    /// Every packed A element is A's (i, p), converted, and rows past the last are zero:
    /// row-major A (the 16-column transpose and its scalar tail) and transposed A, f32 and
    /// f16, full and partial micro-panels, slices of k that start past column 0.
    #[test]
    fn packed_a_holds_each_element_once_and_zero_pads() {
        const MR: usize = 8;
        let (m, k) = (21, 75);
        let value = |i: usize, p: usize| ((i * 37 + p * 11) % 53) as f32 - 26.0;
        let rows: Vec<f32> = (0..m * k).map(|x| value(x / k, x % k)).collect();
        let cols: Vec<f32> = (0..m * k).map(|x| value(x % m, x / m)).collect();
        let half_rows: Vec<f16> = rows.iter().map(|&v| f16::from_f32(v)).collect();
        for (range, pc, kc) in [(0..m, 0, k), (3..m, 5, 64), (0..16, 10, 33), (8..9, 0, 16)] {
            let panels = range.len().div_ceil(MR);
            let mut packs = vec![vec![f32::NAN; panels * MR * kc]; 3];
            pack_a::<f32, MR>(
                range.clone(),
                pc,
                kc,
                MatRef::rows(&rows, 0, k),
                &mut packs[0],
            );
            let t = MatRef::transposed(&cols, 0, m);
            pack_a::<f32, MR>(range.clone(), pc, kc, t, &mut packs[1]);
            let h = MatRef::rows(&half_rows, 0, k);
            pack_a::<f16, MR>(range.clone(), pc, kc, h, &mut packs[2]);
            for (which, packed) in packs.iter().enumerate() {
                for (at, &got) in packed.iter().enumerate() {
                    let (ip, p, lane) = (at / (MR * kc), at / MR % kc, at % MR);
                    let i = range.start + ip * MR + lane;
                    let want = if i < range.end { value(i, pc + p) } else { 0.0 };
                    assert_eq!(
                        got, want,
                        "pack {which}, rows {range:?}, pc {pc}: (i {i}, p {p})"
                    );
                }
            }
        }
    }
}
