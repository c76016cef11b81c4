//! Few rows against a wide B that is the transpose of a row-major matrix (a tied output
//! projection: logits = X · Eᵀ, with E the token embedding, vocabulary × hidden): the
//! product runs as Cᵀ = Bᵀ · Aᵀ, block by block of B's columns, each block's Cᵀ stored in
//! a small per-thread buffer and written out transposed.
//!
//! Run directly, B would be packed into panels on every call: all of E, 113 MB for
//! SmolLM2's 49,152 × 576 table, which held SmolLM2's 128-token prefill's output
//! projection at 154 GFLOP/s against 340 for its other products. Transposed, E is
//! the kernel's A, read in place where it lies (row-major, k contiguous), and only Aᵀ
//! (k × m, a few hundred KiB) is packed, once. Measured on a Sapphire Rapids host,
//! 2 threads: the projection alone 35 → 28–29 ms (210 → 250–260 GFLOP/s, a loop of 15
//! calls in one process); on the AVX2 kernel (forced on the same host, medians of 7
//! calls) 59.2 → 43.1 ms; SmolLM2's f32 prefill (all 128 positions' logits) 0.895× the
//! time, pass by pass (`counting_lockstep.py`, new against old).

use rayon::prelude::*;
use tally_core::{DType, FloatElem, Work};

use super::{
    block, pack, panel_width, scratch, BPanels, Bias, Cols, Epilogue, Isa, MatRef, OutPtr,
    SERIAL_MAX_FMA,
};

/// Fewest elements of B for which a transposed route is taken (4 MiB of f32, 2 MiB of
/// bf16): below it, packing B costs little beside the product.
const B_MIN: usize = 1 << 20;
/// B has at least this many times as many columns as A has rows: Aᵀ, packed, stays small
/// beside B, and each block's Cᵀ stays small beside its rows of B.
const WIDE: usize = 4;
/// Most f32 values of one block's Cᵀ (256 KiB): it stays in L2 between the product that
/// stores it and the transpose that reads it. (SmolLM2's projection ran 1–4% faster than
/// with blocks of 128 KiB, and 512 KiB ones 9% slower.)
const BLOCK_MAX: usize = 1 << 16;

/// Whether C = A·B runs as Cᵀ = Bᵀ·Aᵀ here: an f32 product on the AVX-512 kernel (which
/// reads Bᵀ's rows in place) or the AVX2 one (which packs them a block at a time: still
/// far less than all of B up front), B's columns contiguous (B is a row-major matrix read
/// transposed), B large and much wider than A is tall, and no epilogue beyond a column
/// bias and a clamp.
pub(super) fn applies<T: FloatElem>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    b: MatRef<'_, T>,
    e: &Epilogue<'_, T>,
) -> bool {
    T::DTYPE == DType::F32
        && matches!(isa, Isa::Avx512 | Isa::Avx2)
        && wide_and_transposed(m, n, k, b)
        && !matches!(e.bias, Bias::Rows(_))
        && e.act.is_none()
}

/// The shape every transposed route (this one, `amx_transposed.rs`, `bf16_transposed.rs`)
/// asks for: B's columns contiguous (B is a row-major matrix read transposed), B at least
/// `B_MIN` elements, and at least `WIDE` times as many columns as A has rows.
pub(super) fn wide_and_transposed<T>(m: usize, n: usize, k: usize, b: MatRef<'_, T>) -> bool {
    b.rs == 1 && b.cs >= k && k * n >= B_MIN && n >= WIDE * m
}

/// C = A·B (m × n, row-major at `out`) as Cᵀ = Bᵀ·Aᵀ (see the module docs); call only
/// where [`applies`] holds. Returns the work executed: m·n·k FMAs, and the epilogue's adds
/// per output, as the direct product counts them. Every output is written, none read, so
/// `out` may point at memory not yet initialised.
#[allow(clippy::too_many_arguments)]
pub(super) fn product<T: FloatElem>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    e: Epilogue<'_, T>,
    out: OutPtr<T>,
) -> Work {
    on_f32_tile!(
        isa,
        panel_width(isa, m),
        product_tiled::<T>(isa, m, n, k, a, b, e, out)
    )
}

/// [`product`] on MR × NR tiles: Aᵀ packed once into NR-wide panels over its m columns,
/// then blocks of Bᵀ's rows (C's columns) over the pool, each one's Cᵀ computed into this
/// thread's buffer and written out transposed.
#[allow(clippy::too_many_arguments)]
fn product_tiled<T: FloatElem, const MR: usize, const NR: usize>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    e: Epilogue<'_, T>,
    out: OutPtr<T>,
) -> Work {
    // Aᵀ (k × m) and Bᵀ (n × k, row-major: B's columns are contiguous).
    let (a_t, b_t) = (a.t(), b.t());
    let panels = m.div_ceil(NR);
    let per = rows_per_block(panels * NR, MR, BLOCK_MAX);
    scratch::with_b(panels * k * NR, |a_packed: &mut [f32]| {
        pack::pack_b_into::<T, NR>(k, m, a_t, a_packed);
        let a_packed = &*a_packed;
        let run = |j0: usize, rows: usize| {
            // Bᵀ's rows j0.. are this block's rows of A; C's column bias joins them as a
            // row bias; C's clamp clamps Cᵀ alike.
            let b_rows = b_t.rows_from(j0);
            let bias = match e.bias {
                Bias::Columns(c) => Bias::Rows(&c[j0..j0 + rows]),
                _ => Bias::None,
            };
            let e_t = Epilogue { bias, ..e };
            scratch::with_out_block(rows * m, |c_t| {
                let c_ptr = OutPtr(c_t.as_mut_ptr() as *mut T);
                let cols = Cols { n: m, ld: m };
                let depth = super::KC;
                let work = block::<T, MR, NR>(
                    isa,
                    0..rows,
                    0..panels,
                    depth,
                    cols,
                    k,
                    b_rows,
                    BPanels::F32(a_packed),
                    e_t,
                    c_ptr,
                );
                write_transposed(isa, c_t, rows, m, n, j0, out);
                work
            })
        };
        over_column_blocks(n, per, m * n * k, run)
    })
}

/// Rows of Bᵀ (columns of C) per block: as many as keep a block's Cᵀ of `m` columns
/// within `max` values, in whole `unit`s (at least one).
pub(super) fn rows_per_block(m: usize, unit: usize, max: usize) -> usize {
    (max / m.max(1)).max(unit) / unit * unit
}

/// `run(j0, rows)` for each block of `per` columns of C (the last may be narrower) from
/// j0 = 0 to n, over the pool (or on this thread, for a product of fewer than
/// `SERIAL_MAX_FMA` FMAs or a pool of one), summing the work.
pub(super) fn over_column_blocks(
    n: usize,
    per: usize,
    fma: usize,
    run: impl Fn(usize, usize) -> Work + Sync,
) -> Work {
    let block = |bi: usize| {
        let j0 = bi * per;
        run(j0, per.min(n - j0))
    };
    let blocks = n.div_ceil(per);
    if fma < SERIAL_MAX_FMA || rayon::current_num_threads() == 1 {
        (0..blocks).map(block).sum()
    } else {
        (0..blocks).into_par_iter().map(block).sum()
    }
}

/// Cᵀ's `rows` × `m` values (row-major in `c_t`, columns j0.. of C) into C's columns
/// j0..j0 + rows of each of its m rows (`n` apart at `out`): each row of C written front
/// to back, its values gathered from a column of Cᵀ a register at a time (16 with
/// AVX-512, 8 with AVX2; `isa` from [`Isa::available`]), the rest one by one.
///
/// (Written element by element in 16 × 16 sub-blocks, the transpose took 9.5 of the 34 ms
/// of SmolLM2's 128 × 49,152 × 576 projection: rows of C 49,152 values apart are a
/// multiple of 4 KiB apart, so every row's lines fell into the same L1 set.)
fn write_transposed<T: FloatElem>(
    isa: Isa,
    c_t: &[f32],
    rows: usize,
    m: usize,
    n: usize,
    j0: usize,
    out: OutPtr<T>,
) {
    assert!(c_t.len() >= rows * m, "a block's Cᵀ");
    for i in 0..m {
        // SAFETY: i < m and j0 + rows ≤ n, so row i's columns j0..j0 + rows lie inside the
        // m·n output; this block's columns are written by this task alone (OutPtr).
        let dst = unsafe { out.0.add(i * n + j0) };
        let mut r = 0;
        #[cfg(target_arch = "x86_64")]
        if T::DTYPE == DType::F32 {
            let (col, to) = (c_t.as_ptr().wrapping_add(i), dst as *mut f32);
            // SAFETY: `isa` came from `Isa::available`, which detected its features; T is
            // f32 (its dtype says so); the gathers read c_t[r·m + i] for r < rows (inside
            // c_t, checked above), the stores write at most `rows` values at dst (inside
            // row i's share, as above).
            r = match isa {
                Isa::Avx512 => unsafe { gather_row(col, m, rows, to) },
                Isa::Avx2 => unsafe { gather_row_avx2(col, m, rows, to) },
                Isa::Portable => 0,
            };
        }
        for r in r..rows {
            // SAFETY: as above, r < rows.
            unsafe { dst.add(r).write(T::from_f32(c_t[r * m + i])) };
        }
    }
}

/// Stores `col[r·stride]` at `dst[r]` for r in 0..rows / 16 · 16, 16 at a time (one
/// gather and one store each); returns how many it stored.
///
/// # Safety
/// AVX-512F present; `col[r·stride]` readable and `dst[r]` writable for every r < rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gather_row(
    col: *const f32,
    stride: usize,
    rows: usize,
    dst: *mut f32,
) -> usize {
    use std::arch::x86_64::*;
    // SAFETY: AVX-512F is present (this function's contract).
    let index = unsafe { lane_offsets(stride) };
    let mut r = 0;
    while r + 16 <= rows {
        // SAFETY: the 16 values read are col[(r..r + 16)·stride] and the 16 written
        // dst[r..r + 16], all inside (this function's contract).
        unsafe {
            let v = _mm512_i32gather_ps::<4>(index, col.add(r * stride));
            _mm512_storeu_ps(dst.add(r), v);
        }
        r += 16;
    }
    r
}

/// The 16 lanes' offsets of a gather down a column: lane l at l·`stride` elements.
/// Inlined into its AVX-512 callers (it has no target feature of its own).
///
/// # Safety
/// AVX-512F present (called from a function compiled for it).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn lane_offsets(stride: usize) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    // SAFETY: AVX-512F is present (this function's contract).
    unsafe {
        _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(stride as i32),
        )
    }
}

/// [`gather_row`] 8 at a time, with AVX2.
///
/// # Safety
/// AVX2 present; `col[r·stride]` readable and `dst[r]` writable for every r < rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gather_row_avx2(col: *const f32, stride: usize, rows: usize, dst: *mut f32) -> usize {
    use std::arch::x86_64::*;
    let s = stride as i32;
    let index = _mm256_setr_epi32(0, s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 7 * s);
    let mut r = 0;
    while r + 8 <= rows {
        // SAFETY: the 8 values read are col[(r..r + 8)·stride] and the 8 written
        // dst[r..r + 8], all inside (this function's contract).
        unsafe {
            let v = _mm256_i32gather_ps::<4>(col.add(r * stride), index);
            _mm256_storeu_ps(dst.add(r), v);
        }
        r += 8;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::{gemm_biased_uninit, gemm_naive, on_threads, Clamp};
    use super::*;

    /// A tied output projection's shape, small: B is the transpose of a row-major
    /// (n × k) table whose rows are `ld` values apart, behind an offset.
    const M: usize = 37;
    const N: usize = 4100;
    const K: usize = 300;

    /// The table (n rows of k values, `ld` apart from `offset`), A (m × k) and the f64
    /// product A · tableᵀ.
    fn operands(ld: usize, offset: usize) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
        let table: Vec<f32> = (0..offset + N * ld)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let a: Vec<f32> = (0..M * K)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
        let b64: Vec<f64> = (0..K * N)
            .map(|i| table[offset + (i % N) * ld + i / N] as f64)
            .collect();
        (table, a, gemm_naive(M, N, K, &a64, &b64))
    }

    /// The shape takes this path on AVX-512 and AVX2 (not the portable kernel), and not when B's rows
    /// are contiguous, when B is small or narrow, or under a row bias.
    #[test]
    fn only_wide_transposed_f32_products_take_it() {
        let data = vec![0f32; 1];
        let e = Epilogue::columns(None);
        let t = |ld| MatRef::transposed(&data, 0, ld);
        assert!(applies::<f32>(Isa::Avx512, M, N, K, t(K), &e));
        assert!(applies::<f32>(Isa::Avx2, M, N, K, t(K), &e));
        assert!(!applies::<f32>(Isa::Portable, M, N, K, t(K), &e));
        assert!(!applies::<f32>(
            Isa::Avx512,
            M,
            N,
            K,
            MatRef::rows(&data, 0, N),
            &e
        ));
        assert!(!applies::<f32>(Isa::Avx512, M, 3000, K, t(K), &e)); // k·n < B_MIN
        assert!(!applies::<f32>(Isa::Avx512, 1100, N, K, t(K), &e)); // n < 4·m
        let rows = Epilogue {
            bias: Bias::Rows(&data),
            clamp: None,
            act: None,
        };
        assert!(!applies::<f32>(Isa::Avx512, M, N, K, t(K), &rows));
    }

    /// Against the f64 product, with a column bias and a clamp, into a buffer of NaNs (every
    /// output written), to f32's accuracy for a 300-term sum (2e-5 of 1 + |value|; the
    /// worst seen was 6.4e-6), on each kernel it runs on (AVX-512, AVX2) and on 1 and 2 threads:
    /// the work is the direct product's. The route `gemm` takes on this host is checked the
    /// same way, through `gemm_biased_uninit`.
    #[test]
    fn matches_the_naive_product_with_bias_and_clamp() {
        let (ld, offset) = (K + 3, 5);
        let (table, a, want) = operands(ld, offset);
        let bias: Vec<f32> = (0..N).map(|j| (j % 17) as f32 / 4.0 - 2.0).collect();
        let clamp = Clamp {
            lo: -6.0,
            hi: 6.0,
            comparisons: 2,
        };
        let e = Epilogue {
            bias: Bias::Columns(&bias),
            clamp: Some(clamp),
            act: None,
        };
        let b = MatRef::transposed(&table, offset, ld);
        let a = MatRef::rows(&a, 0, K);
        let isas: Vec<Isa> = Isa::available()
            .into_iter()
            .filter(|&isa| applies::<f32>(isa, M, N, K, b, &e))
            .collect();
        if isas.is_empty() {
            eprintln!(
                "skipped: the transposed product runs on AVX-512 or AVX2, which this host lacks"
            );
            return;
        }
        let check = |route: &str, work: Work, out: &[std::mem::MaybeUninit<f32>]| {
            assert_eq!(work.fma, (M * N * K) as u64, "{route}");
            assert_eq!(work.add, (M * N * 3) as u64, "{route}"); // the bias, two comparisons
            for i in 0..M {
                for j in 0..N {
                    // SAFETY: the buffer was initialised with NaN, and the product wrote it.
                    let got = unsafe { out[i * N + j].assume_init() } as f64;
                    let w = (want[i * N + j] + bias[j] as f64).clamp(-6.0, 6.0);
                    assert!(
                        (got - w).abs() <= 2e-5 * (1.0 + w.abs()),
                        "{route}: ({i}, {j}) is {got}, want {w}"
                    );
                }
            }
        };
        for threads in [1, 2] {
            for &isa in &isas {
                let mut out = vec![std::mem::MaybeUninit::new(f32::NAN); M * N];
                let outp = OutPtr(out.as_mut_ptr() as *mut f32);
                let work = on_threads(threads, || product(isa, M, N, K, a, b, e, outp));
                check(&format!("{isa:?} on {threads} threads"), work, &out);
            }
            let mut out = vec![std::mem::MaybeUninit::new(f32::NAN); M * N];
            let work = on_threads(threads, || {
                gemm_biased_uninit(M, N, K, a, b, Bias::Columns(&bias), Some(clamp), &mut out)
            });
            check(&format!("gemm on {threads} threads"), work, &out);
        }
    }
}
