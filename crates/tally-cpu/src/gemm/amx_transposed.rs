//! The AMX form of `transposed.rs`: a few bf16 rows against a wide bf16 B that is the
//! transpose of a row-major matrix (a tied output projection, logits = X · Eᵀ) run as
//! Cᵀ = Bᵀ · Aᵀ, so that E is cut into A tiles block by block (its rows are the tile
//! rows) instead of being packed whole into B tiles on every call: 56 MB for SmolLM2's
//! 49,152 × 576 table, which held its bf16 prefill's output projection at 312 GFLOP/s
//! against 945 for its other products. Each block's Cᵀ is kept in f32 in a per-thread
//! buffer and written out transposed, its bias added and rounded to bf16 row by row of C.

use half::bf16;
use tally_core::Work;

use super::amx::{self, Sink, BLOCK_M, BLOCK_N};
use super::transposed::{over_column_blocks, rows_per_block, wide_and_transposed};
use super::{scratch, MatRef, OutPtr, SMALL_M};

/// Most f32 values of one block's Cᵀ (256 KiB, kept in L2 until it is written out).
const BLOCK_MAX: usize = 1 << 16;

/// Whether the AMX product C = A·B runs as Cᵀ = Bᵀ·Aᵀ: more than a few rows (fewer take
/// `amx_gemv`), and the shape of [`wide_and_transposed`].
pub(super) fn applies(m: usize, n: usize, k: usize, b: MatRef<'_, bf16>) -> bool {
    m > SMALL_M && wide_and_transposed(m, n, k, b)
}

/// C = A·B [+ bias] (m × n bf16, row-major) as Cᵀ = Bᵀ·Aᵀ on AMX tiles; call only where
/// [`applies`] holds and AMX is available. Returns the work executed: m·n·k FMAs and one
/// add per output with a bias, as the direct product counts them.
pub(super) fn product(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b: MatRef<'_, bf16>,
    bias: Option<&[bf16]>,
    out: &mut [bf16],
) -> Work {
    assert_eq!(out.len(), m * n, "gemm output buffer");
    // Aᵀ (k × m), packed once as the tiles' B; Bᵀ (n × k, row-major), cut into A tiles.
    let (a_t, b_t) = (a.t(), b.t());
    let panels = m.div_ceil(BLOCK_N);
    let per = rows_per_block(m, BLOCK_M, BLOCK_MAX);
    let out = OutPtr(out.as_mut_ptr());
    scratch::with_b(amx::packed_b_len(k, m), |a_packed: &mut [u32]| {
        amx::pack_b(k, m, a_t, a_packed);
        let a_packed = &*a_packed;
        let run = |j0: usize, rows: usize| {
            // The whole pointer (a closure would capture its field alone, which is not Sync).
            let c = out;
            let b_rows = b_t.rows_from(j0);
            scratch::with_out_block(rows * m + rows, |buf| {
                let (c_t, staged) = buf.split_at_mut(rows * m);
                let sink = Sink::F32(OutPtr(c_t.as_mut_ptr()));
                let mut work = amx::block(0..rows, 0..panels, m, k, b_rows, a_packed, sink);
                let bias = bias.map(|b| &b[j0..j0 + rows]);
                for i in 0..m {
                    stage_column(c_t, m, i, staged);
                    // SAFETY: row i's columns j0..j0 + rows lie inside the m·n output
                    // (i < m, j0 + rows ≤ n), written by this task alone (OutPtr).
                    let dst = unsafe { std::slice::from_raw_parts_mut(c.0.add(i * n + j0), rows) };
                    work.add += amx::round_sums_to_bf16(staged, bias, dst);
                }
                work
            })
        };
        over_column_blocks(n, per, m * n * k, run)
    })
}

/// Column `i` of the row-major Cᵀ (`staged.len()` rows of `m`) into `staged`.
fn stage_column(c_t: &[f32], m: usize, i: usize, staged: &mut [f32]) {
    let rows = staged.len();
    assert!(i < m && c_t.len() >= rows * m, "a column of a block's Cᵀ");
    let mut r = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is present; the gathers read c_t[r·m + i] for r < rows (inside,
        // checked above) and the stores write staged[..rows].
        r = unsafe {
            super::transposed::gather_row(c_t.as_ptr().add(i), m, rows, staged.as_mut_ptr())
        };
    }
    for r in r..rows {
        staged[r] = c_t[r * m + i];
    }
}

#[cfg(test)]
mod tests {
    use super::super::{gemm_naive, on_threads};
    use super::*;

    const M: usize = 40;
    const N: usize = 4200;
    const K: usize = 300;

    /// The shape takes this path, and not when B's rows are contiguous, when B is small
    /// or narrow, or for a decode step's few rows.
    #[test]
    fn only_wide_transposed_products_of_several_rows_take_it() {
        let data = vec![bf16::ZERO; 1];
        let t = |ld| MatRef::transposed(&data, 0, ld);
        assert!(applies(M, N, K, t(K)));
        assert!(!applies(M, N, K, MatRef::rows(&data, 0, N)));
        assert!(!applies(M, 3000, K, t(K))); // k·n < B_MIN
        assert!(!applies(1100, N, K, t(K))); // n < 4·m
        assert!(!applies(SMALL_M, N, K, t(K)));
    }

    /// Against the f64 product of the same bf16 values with a column bias, on 1 and 2
    /// threads, to bf16's rounding: the work is the direct product's.
    #[test]
    fn matches_the_naive_product_with_a_bias() {
        if !amx::available() {
            eprintln!("skipped: this host has no AMX (or Linux did not grant its tile state)");
            return;
        }
        let (ld, offset) = (K + 5, 3);
        let q = |i: usize, p: usize, d: f32| bf16::from_f32(((i * p % 23) as f32 - 11.0) / d);
        let table: Vec<bf16> = (0..offset + N * ld).map(|i| q(i, 5, 16.0)).collect();
        let a: Vec<bf16> = (0..M * K).map(|i| q(i, 7, 8.0)).collect();
        let bias: Vec<bf16> = (0..N).map(|j| q(j, 3, 4.0)).collect();
        let a64: Vec<f64> = a.iter().map(|x| x.to_f64()).collect();
        let b64: Vec<f64> = (0..K * N)
            .map(|i| table[offset + (i % N) * ld + i / N].to_f64())
            .collect();
        let want = gemm_naive(M, N, K, &a64, &b64);
        let b = MatRef::transposed(&table, offset, ld);
        assert!(applies(M, N, K, b));
        for threads in [1, 2] {
            let mut out = vec![bf16::NAN; M * N];
            let work = on_threads(threads, || {
                product(M, N, K, MatRef::rows(&a, 0, K), b, Some(&bias), &mut out)
            });
            assert_eq!((work.fma, work.add), ((M * N * K) as u64, (M * N) as u64));
            for i in 0..M {
                for j in 0..N {
                    let w = want[i * N + j] + bias[j].to_f64();
                    let got = out[i * N + j].to_f64();
                    assert!(
                        (got - w).abs() <= 1e-2 * (1.0 + w.abs()),
                        "{threads} threads: ({i}, {j}) is {got}, want {w}"
                    );
                }
            }
        }
    }
}
