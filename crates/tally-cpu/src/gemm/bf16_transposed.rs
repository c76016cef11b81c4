//! The `vdpbf16ps` form of `transposed.rs` (AVX-512 BF16 without AMX: AMD Zen 4 and 5): a
//! few bf16 rows against a wide bf16 B that is the transpose of a row-major matrix (a tied
//! output projection, logits = X · Eᵀ) run as Cᵀ = Bᵀ · Aᵀ, so that each task packs E's
//! rows into its A micro-panels a slice at a time instead of all of E being packed into
//! pair panels on every call (56 MB for SmolLM2's 49,152 × 576 table). Each block's Cᵀ
//! is rounded to bf16 by the kernel's own epilogue and copied out transposed, exactly.
//! Measured on this kernel on a Sapphire Rapids host (forced: the host runs bf16 on AMX),
//! 2 threads, SmolLM2's projection 128 × 576 · 576 × 49,152: 62.0–62.6 → 41.0–42.0 ms
//! (medians of 7 calls, two alternating runs). Not measured on a Zen host.
//!
//! Without a bias only: a bias joins C's columns, which are Cᵀ's rows, and the kernel's
//! epilogue adds only a column bias; added after the rounding it would round twice.

use half::bf16;
use tally_core::Work;

use super::bf16::{self as dot, MR, NR};
use super::transposed::{over_column_blocks, rows_per_block};
use super::{scratch, MatRef, OutPtr};

/// Most bf16 values of one block's Cᵀ (128 KiB, kept in L2 until it is written out).
const BLOCK_MAX: usize = 1 << 16;

/// Whether the `vdpbf16ps` product C = A·B [+ bias] runs as Cᵀ = Bᵀ·Aᵀ: no bias, and the
/// shape the AMX route takes (more than a few rows, B a large row-major matrix read
/// transposed, much wider than A is tall).
pub(super) fn applies(
    m: usize,
    n: usize,
    k: usize,
    b: MatRef<'_, bf16>,
    bias: Option<&[bf16]>,
) -> bool {
    bias.is_none() && super::amx_transposed::applies(m, n, k, b)
}

/// C = A·B (m × n bf16, row-major) as Cᵀ = Bᵀ·Aᵀ on the `vdpbf16ps` kernel; call only
/// where [`applies`] holds and AVX-512 BF16 is available. Returns the work executed:
/// m·n·k FMAs, as the direct product counts them.
pub(super) fn product(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b: MatRef<'_, bf16>,
    out: &mut [bf16],
) -> Work {
    assert_eq!(out.len(), m * n, "gemm output buffer");
    // Aᵀ (k × m), packed once into pair panels; Bᵀ (n × k, row-major), the kernel's A.
    let (a_t, b_t) = (a.t(), b.t());
    let panels = m.div_ceil(NR);
    let per = rows_per_block(m, MR, BLOCK_MAX);
    let out = OutPtr(out.as_mut_ptr());
    scratch::with_b(panels * k.div_ceil(2) * NR, |a_packed: &mut [u32]| {
        dot::pack_b(k, m, a_t, a_packed);
        let a_packed = &*a_packed;
        let run = |j0: usize, rows: usize| {
            // The whole pointer (a closure would capture its field alone, which is not Sync).
            let c = out;
            let b_rows = b_t.rows_from(j0);
            scratch::with_out_block((rows * m).div_ceil(2), |buf| {
                // SAFETY: the f32 buffer holds at least rows·m bf16 (two to a value), is
                // aligned for f32 and so for bf16, and every bf16 bit pattern is valid.
                let c_t = unsafe {
                    std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut bf16, rows * m)
                };
                let c_ptr = OutPtr(c_t.as_mut_ptr());
                let work = dot::block(0..rows, 0..panels, m, k, b_rows, a_packed, None, c_ptr);
                write_transposed(c_t, rows, m, n, j0, c);
                work
            })
        };
        over_column_blocks(n, per, m * n * k, run)
    })
}

/// Cᵀ's `rows` × `m` bf16 (row-major in `c_t`) into C's columns j0..j0 + rows of each of
/// its m rows (`n` apart at `out`): with AVX-512, two rows of C at a time, each 32-bit
/// gather from a column pair of Cᵀ holding 16 values of both; the rest one by one.
fn write_transposed(c_t: &[bf16], rows: usize, m: usize, n: usize, j0: usize, out: OutPtr<bf16>) {
    assert!(c_t.len() >= rows * m && j0 + rows <= n, "a block's Cᵀ");
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
        while i + 1 < m {
            // SAFETY: AVX-512F/BW present; the gathers read the pairs c_t[r·m + i..][..2]
            // for r < rows / 16 · 16 (inside c_t: i + 1 < m); rows i and i + 1 of C's
            // columns j0..j0 + rows lie inside the output and are this task's alone.
            let done = unsafe {
                let base = c_t.as_ptr().add(i);
                let (lo, hi) = (out.0.add(i * n + j0), out.0.add((i + 1) * n + j0));
                gather_pairs(base, m, rows, lo, hi)
            };
            for r in done..rows {
                // SAFETY: as above, r < rows.
                unsafe {
                    out.0.add(i * n + j0 + r).write(c_t[r * m + i]);
                    out.0.add((i + 1) * n + j0 + r).write(c_t[r * m + i + 1]);
                }
            }
            i += 2;
        }
    }
    for i in i..m {
        for r in 0..rows {
            // SAFETY: i < m and j0 + r < n (checked above): inside the output, this task's.
            unsafe { out.0.add(i * n + j0 + r).write(c_t[r * m + i]) };
        }
    }
}

/// For r in 0..rows / 16 · 16: `lo[r] = pair[r·stride]` and `hi[r] = pair[r·stride + 1]`,
/// 16 r at a time (one 32-bit gather, two narrowing stores); returns how many r it did.
///
/// # Safety
/// AVX-512F and BW present; `pair[r·stride..][..2]` readable and `lo[r]`, `hi[r]` writable
/// for every r < rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn gather_pairs(
    pair: *const bf16,
    stride: usize,
    rows: usize,
    lo: *mut bf16,
    hi: *mut bf16,
) -> usize {
    use std::arch::x86_64::*;
    // SAFETY: AVX-512F is present (this function's contract).
    let index = unsafe { super::transposed::lane_offsets(stride) };
    let mut r = 0;
    while r + 16 <= rows {
        // SAFETY: the gather reads 4 bytes at pair + 2·(r + l)·stride for l < 16 (the
        // pairs of this function's contract); the stores write lo[r..r + 16] and
        // hi[r..r + 16].
        unsafe {
            let v = _mm512_i32gather_epi32::<2>(index, pair.add(r * stride).cast());
            _mm256_storeu_si256(lo.add(r).cast(), _mm512_cvtepi32_epi16(v));
            let upper = _mm512_srli_epi32::<16>(v);
            _mm256_storeu_si256(hi.add(r).cast(), _mm512_cvtepi32_epi16(upper));
        }
        r += 16;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::{gemm_naive, on_threads, Bf16Isa};
    use super::*;

    /// Against the f64 product of the same bf16 values, odd m (the last row of C copied
    /// one by one) and a tail of rows, on 1 and 2 threads, to bf16's rounding; the work is
    /// the direct product's; a bias keeps the direct route.
    #[test]
    fn matches_the_naive_product() {
        if !Bf16Isa::available().contains(&Bf16Isa::Avx512Bf16) {
            eprintln!("skipped: this host has no AVX-512 BF16");
            return;
        }
        let (m, n, k, ld, offset) = (41, 4203, 300, 305, 3);
        let q = |i: usize, p: usize, d: f32| bf16::from_f32(((i * p % 23) as f32 - 11.0) / d);
        let table: Vec<bf16> = (0..offset + n * ld).map(|i| q(i, 5, 16.0)).collect();
        let a: Vec<bf16> = (0..m * k).map(|i| q(i, 7, 8.0)).collect();
        let a64: Vec<f64> = a.iter().map(|x| x.to_f64()).collect();
        let b64: Vec<f64> = (0..k * n)
            .map(|i| table[offset + (i % n) * ld + i / n].to_f64())
            .collect();
        let want = gemm_naive(m, n, k, &a64, &b64);
        let b = MatRef::transposed(&table, offset, ld);
        assert!(applies(m, n, k, b, None));
        assert!(!applies(m, n, k, b, Some(&table[..n])));
        for threads in [1, 2] {
            let mut out = vec![bf16::NAN; m * n];
            let work = on_threads(threads, || {
                product(m, n, k, MatRef::rows(&a, 0, k), b, &mut out)
            });
            assert_eq!((work.fma, work.add), ((m * n * k) as u64, 0));
            for i in 0..m {
                for j in 0..n {
                    let (w, got) = (want[i * n + j], out[i * n + j].to_f64());
                    assert!(
                        (got - w).abs() <= 1e-2 * (1.0 + w.abs()),
                        "{threads} threads: ({i}, {j}) is {got}, want {w}"
                    );
                }
            }
        }
    }
}
