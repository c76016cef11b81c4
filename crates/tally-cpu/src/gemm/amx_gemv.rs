//! Products of a few rows (a decode step) by a bf16 weight packed as AMX tiles: each row
//! streams the tiles once with `vdpbf16ps` (every AMX host has AVX-512 BF16) instead of
//! padding the row to a 32-row tile block. Such a product is bound by the bytes of B, and
//! a tile load from memory stalls the tile pipeline, so the vector unit streams it here.
//! Each tile row (one pair-row of k, 16 columns of bf16 pairs) is one 64-byte load.

use half::bf16;
use tally_core::Work;

use super::amx::{steps_of, BLOCK_N, TILE_U32};
use super::bf16::pair;
use super::{scratch, MatRef};

/// C (m, n) = A (m, k) · B [+ bias] for B packed by `amx::pack_b_owned`, one row at a
/// time. The caller has checked [`super::amx::available`]. Returns the work executed:
/// m·n·k FMAs and one add per output when a bias is added.
pub(super) fn gemv(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b_packed: &[u32],
    bias: Option<&[bf16]>,
    out: &mut [bf16],
) -> Work {
    let steps = steps_of(k);
    let panel_len = steps * 2 * TILE_U32;
    let mut work = Work::ZERO;
    // The row as bf16 pairs of k (zero past k), in this thread's packed-A scratch.
    scratch::with::<u32, _>(steps * 16, |pairs, _| {
        for i in 0..m {
            let at = |p: usize| {
                if p < k {
                    a.data[a.offset + i * a.rs + p * a.cs]
                } else {
                    bf16::ZERO
                }
            };
            for (q, d) in pairs.iter_mut().enumerate() {
                *d = pair(at(2 * q), at(2 * q + 1));
            }
            let pairs = &*pairs;
            let row = &mut out[i * n..(i + 1) * n];
            let columns = |c0: usize, dst: &mut [bf16]| -> Work {
                let mut w = Work::ZERO;
                for (pj, cols) in dst.chunks_mut(BLOCK_N).enumerate() {
                    let jp = c0 / BLOCK_N + pj;
                    let panel = &b_packed[jp * panel_len..(jp + 1) * panel_len];
                    // SAFETY: AMX hosts have AVX-512F and AVX-512 BF16 (checked again here in
                    // debug builds); the panel holds `steps` steps, `pairs` 16 per step.
                    let acc = unsafe { panel_dot(steps, pairs, panel) };
                    w.add += super::store_sums(cols, &acc, bias.map(|b| &b[jp * BLOCK_N..]));
                    // Pad columns and the zero pairs past k are not counted.
                    w.fma += (cols.len() * k) as u64;
                }
                w
            };
            work += super::over_column_groups(row, BLOCK_N, k * n, columns);
        }
    });
    work
}

/// One 32-column panel against one row: per step, each of the 16 pair-rows of both tiles
/// meets the row's pair broadcast (`vdpbf16ps`), two accumulators per tile so that
/// consecutive pair-rows do not wait on each other. Returns the 32 sums.
///
/// # Safety
/// AVX-512F and AVX-512 BF16 present; `panel` holds `steps` steps of two tiles and
/// `pairs` at least 16 per step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn panel_dot(steps: usize, pairs: &[u32], panel: &[u32]) -> [f32; BLOCK_N] {
    use std::arch::x86_64::*;
    debug_assert!(is_x86_feature_detected!("avx512bf16"));
    assert!(panel.len() >= steps * 2 * TILE_U32 && pairs.len() >= steps * 16);
    // SAFETY: a 512-bit integer vector and `__m512bh` are the same 64 bytes, any bits.
    let bh = |v: __m512i| unsafe { std::mem::transmute::<__m512i, __m512bh>(v) };
    let mut acc = [_mm512_setzero_ps(); 4];
    for (step, tiles) in panel.chunks_exact(2 * TILE_U32).take(steps).enumerate() {
        let (left, right) = tiles.split_at(TILE_U32);
        for r in 0..16 {
            let av = bh(_mm512_set1_epi32(pairs[step * 16 + r] as i32));
            // SAFETY: row r of each 256-u32 tile is 16 u32 (64 bytes) in bounds.
            let (w0, w1) = unsafe {
                (
                    _mm512_loadu_si512(left.as_ptr().add(r * 16).cast()),
                    _mm512_loadu_si512(right.as_ptr().add(r * 16).cast()),
                )
            };
            let e = r % 2;
            acc[e] = _mm512_dpbf16_ps(acc[e], av, bh(w0));
            acc[2 + e] = _mm512_dpbf16_ps(acc[2 + e], av, bh(w1));
        }
    }
    let mut sums = [0f32; BLOCK_N];
    // SAFETY: `sums` is 32 f32: two unaligned 64-byte stores in bounds.
    unsafe {
        _mm512_storeu_ps(sums.as_mut_ptr(), _mm512_add_ps(acc[0], acc[1]));
        _mm512_storeu_ps(sums.as_mut_ptr().add(16), _mm512_add_ps(acc[2], acc[3]));
    }
    sums
}

/// Never called off x86-64: AMX exists only there.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn panel_dot(_steps: usize, _pairs: &[u32], _panel: &[u32]) -> [f32; BLOCK_N] {
    unreachable!("AMX exists only on x86-64")
}
