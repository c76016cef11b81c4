//! Products with very few rows (a decode step, one image): no packing. Each output is a
//! dot product when B's columns are contiguous in k (a transposed weight), or rows of B
//! are swept with axpy when B's rows are contiguous in n. Each output counts its k FMAs.
//! A large B read as dot products (a tied lm_head) is split across the pool by columns.

use rayon::prelude::*;
use tally_core::{FloatElem, Work};

use super::MatRef;

/// Lanes of partial sums, so the compiler can vectorise the reduction.
const LANES: usize = 16;

/// Weight elements from which the dot products of a row run on the pool.
const PARALLEL_MIN: usize = 1 << 20;

/// Elements of B converted to f32 at a time (a multiple of [`LANES`], so the partial sums
/// take the same elements as over an unchunked row): f16 in one vector conversion into a
/// stack buffer that every row then reads from L1.
const CHUNK: usize = 256;

/// `b[s..e]` as f32: the slice itself for f32, else converted into `buf`.
#[inline(always)]
fn as_f32<'a, T: FloatElem>(b: &'a [T], buf: &'a mut [f32; CHUNK]) -> &'a [f32] {
    match T::as_f32s(b) {
        Some(f) => f,
        None => {
            T::convert_to_f32(b, &mut buf[..b.len()]);
            &buf[..b.len()]
        }
    }
}

/// a · b, b converted to f32 as it is read (a no-op for f32; a shift for bf16).
fn dot<T: FloatElem>(a: &[f32], b: &[T]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y.to_f32())
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l].to_f32();
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The `M` dot products rows[i] · b, rows being M rows of k f32 one after another: b is
/// read from memory once for all of them. One row of f32 or bf16 (a shift) converts B as
/// it reads it; otherwise B is converted a chunk at a time into a stack buffer that every
/// row reads from L1 (once per chunk for all rows; f16's scalar conversion is a call per
/// element).
fn dots<T: FloatElem, const M: usize>(rows: &[f32], k: usize, b: &[T]) -> [f32; M] {
    if M == 1 && T::DTYPE != tally_core::DType::F16 {
        return std::array::from_fn(|_| dot(&rows[..k], b));
    }
    let mut acc = [[0f32; LANES]; M];
    let mut tail = [0f32; M];
    let mut buf = [0f32; CHUNK];
    let mut s = 0;
    while s < k {
        let e = (s + CHUNK).min(k);
        let bc = as_f32(&b[s..e], &mut buf);
        let whole = bc.len() / LANES * LANES;
        for (i, (acc, tail)) in acc.iter_mut().zip(&mut tail).enumerate() {
            let r = &rows[i * k + s..i * k + e];
            for (x, y) in r[..whole]
                .chunks_exact(LANES)
                .zip(bc[..whole].chunks_exact(LANES))
            {
                for l in 0..LANES {
                    acc[l] += x[l] * y[l];
                }
            }
            for (x, y) in r[whole..].iter().zip(&bc[whole..]) {
                *tail += x * y;
            }
        }
        s = e;
    }
    std::array::from_fn(|i| acc[i].iter().sum::<f32>() + tail[i])
}

/// Writes `v` at element `at` of the output behind `out` (the wrapper is taken whole, so
/// a task's closure holds the shareable `OutPtr`, not its raw pointer).
///
/// # Safety
/// `at` is inside the output, and no other task writes that element.
unsafe fn put<T>(out: super::OutPtr<T>, at: usize, v: T) {
    // SAFETY: as the caller vouches.
    unsafe { *out.0.add(at) = v }
}

/// The dot products of `rows` (m of them, 1 ≤ m ≤ SMALL_M) with column j of B, for each j
/// in `cols`, handed to `put(i, j, sum)`. Returns the multiply-adds it executed.
fn dot_columns<T: FloatElem>(
    m: usize,
    k: usize,
    rows: &[f32],
    b: MatRef<'_, T>,
    cols: std::ops::Range<usize>,
    mut put: impl FnMut(usize, usize, f32),
) -> u64 {
    fn each<T: FloatElem, const M: usize>(
        k: usize,
        rows: &[f32],
        b: MatRef<'_, T>,
        cols: std::ops::Range<usize>,
        put: &mut impl FnMut(usize, usize, f32),
    ) -> u64 {
        let mut fma = 0u64;
        for j in cols {
            let sums = dots::<T, M>(rows, k, &b.data[b.offset + j * b.cs..][..k]);
            fma += (M * k) as u64;
            for (i, s) in sums.into_iter().enumerate() {
                put(i, j, s);
            }
        }
        fma
    }
    match m {
        1 => each::<T, 1>(k, rows, b, cols, &mut put),
        2 => each::<T, 2>(k, rows, b, cols, &mut put),
        3 => each::<T, 3>(k, rows, b, cols, &mut put),
        4 => each::<T, 4>(k, rows, b, cols, &mut put),
        _ => unreachable!("gemm_small takes 1 to SMALL_M rows"),
    }
}

/// C = A·B [+ bias] for small m (1 to `SMALL_M` rows), or `None` for other row counts or a
/// B strided in both directions. B is read from memory once whatever m is. The work is
/// tallied as it is done: each column's or row's multiply-adds, and each bias add.
pub(super) fn gemm_small<T: FloatElem>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: Option<&[T]>,
    out: &mut [T],
) -> Option<Work> {
    const _: () = assert!(super::SMALL_M == 4, "dot_columns instantiates 1 to 4 rows");
    if (b.rs != 1 && b.cs != 1) || !(1..=super::SMALL_M).contains(&m) {
        return None;
    }
    let threads = rayon::current_num_threads();
    // A large weight read as dot products (a tied lm_head): memory-bound, so both threads
    // stream it, each writing its column range of the output directly.
    let streamed = b.rs == 1 && k * n >= PARALLEL_MIN && threads > 1;
    // A's rows and the accumulators live in this thread's scratch (no accumulators when
    // the output is written directly: a vocabulary-wide row of them would be one more
    // buffer for every thread that ever runs a decode step).
    Some(super::scratch::with::<f32, _>(m * k, |rows, acc| {
        for i in 0..m {
            for (p, r) in rows[i * k..(i + 1) * k].iter_mut().enumerate() {
                *r = a.data[a.offset + i * a.rs + p * a.cs].to_f32();
            }
        }
        let rows = &*rows;
        if streamed {
            // In whole cache lines of outputs per task; each task writes its columns of
            // every row, and tallies its own work.
            let per = n.div_ceil(2 * threads).next_multiple_of(16);
            let dst = super::OutPtr(out.as_mut_ptr());
            return (0..n.div_ceil(per))
                .into_par_iter()
                .map(|t| {
                    let cols = t * per..((t + 1) * per).min(n);
                    let mut adds = 0u64;
                    let fma = dot_columns(m, k, rows, b, cols, |i, j, sum| {
                        let v = match bias {
                            Some(bias) => {
                                adds += 1;
                                sum + bias[j].to_f32()
                            }
                            None => sum,
                        };
                        // SAFETY: i < m and j < n index the m·n output, and each task
                        // writes only its own columns.
                        unsafe { put(dst, i * n + j, T::from_f32(v)) }
                    });
                    Work {
                        add: adds,
                        fma,
                        ..Work::ZERO
                    }
                })
                .reduce(|| Work::ZERO, |x, y| x + y);
        }
        acc.clear();
        acc.resize(m * n, 0.0);
        let mut work = Work::ZERO;
        if b.rs == 1 {
            work.fma += dot_columns(m, k, rows, b, 0..n, |i, j, sum| acc[i * n + j] = sum);
        } else {
            // Rows of B swept once with axpy, each chunk converted once for every row of A.
            let mut buf = [0f32; CHUNK];
            for p in 0..k {
                let src = &b.data[b.offset + p * b.rs..][..n];
                for j0 in (0..n).step_by(CHUNK) {
                    let j1 = (j0 + CHUNK).min(n);
                    let bc = as_f32(&src[j0..j1], &mut buf);
                    for i in 0..m {
                        let x = rows[i * k + p];
                        for (c, s) in acc[i * n + j0..i * n + j1].iter_mut().zip(bc) {
                            *c += x * s;
                        }
                    }
                    work.fma += (m * bc.len()) as u64;
                }
            }
        }
        for i in 0..m {
            let sums = &acc[i * n..(i + 1) * n];
            work.add += super::store_sums(&mut out[i * n..(i + 1) * n], sums, bias);
        }
        work
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large transposed f32 weight with a bias, on two threads: the streamed path
    /// writes each output directly and counts n·k FMAs and n bias adds per row.
    #[test]
    fn a_streamed_tied_head_matches_the_naive_product() {
        let (m, k, n) = (2usize, 300usize, 4000usize);
        assert!(k * n >= PARALLEL_MIN);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        // B (k, n) stored as its transpose (n, k): element (p, j) at j·k + p.
        let bt: Vec<f32> = (0..n * k)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 * 1e-3).collect();
        let mut out = vec![0f32; m * n];
        let work = super::super::on_threads(2, || {
            gemm_small(
                m,
                n,
                k,
                MatRef::rows(&a, 0, k),
                MatRef::transposed(&bt, 0, k),
                Some(&bias),
                &mut out,
            )
        })
        .expect("B is contiguous along k");
        assert_eq!(work.fma, (m * n * k) as u64);
        assert_eq!(work.add, (m * n) as u64);
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|p| a[i * k + p] as f64 * bt[j * k + p] as f64);
                let want = terms.clone().sum::<f64>() + bias[j] as f64;
                let scale = terms.map(f64::abs).sum::<f64>() + bias[j].abs() as f64;
                let got = out[i * n + j] as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * scale,
                    "({i}, {j}): {got} vs {want}"
                );
            }
        }
    }

    /// Every row count up to SMALL_M, both layouts of B (dot products over a transposed B,
    /// axpy over a row-major one), k across a conversion chunk's edge, in f32, bf16 and f16
    /// (whose B is converted a chunk at a time): against the naive f64 product, within one
    /// rounding of the output dtype, and m·n·k FMAs plus m·n bias adds.
    #[test]
    fn every_small_row_count_reads_b_once_and_matches_the_naive_product() {
        fn case<T: FloatElem>(m: usize, k: usize, transposed: bool, ulp: f64) {
            let n = 70;
            let val = |i: usize, s: usize| T::from_f32(((i * 7 + s) % 13) as f32 / 6.0 - 1.0);
            let a: Vec<T> = (0..m * k).map(|i| val(i, 1)).collect();
            // B (k, n): row-major, or stored as its transpose (n, k).
            let bdata: Vec<T> = (0..n * k).map(|i| val(i, 4)).collect();
            let at = |p: usize, j: usize| {
                if transposed {
                    bdata[j * k + p]
                } else {
                    bdata[p * n + j]
                }
            };
            let bias: Vec<T> = (0..n).map(|j| val(j, 9)).collect();
            let mut out = vec![T::default(); m * n];
            let b = if transposed {
                MatRef::transposed(&bdata, 0, k)
            } else {
                MatRef::rows(&bdata, 0, n)
            };
            let work = super::super::on_threads(1, || {
                gemm_small(m, n, k, MatRef::rows(&a, 0, k), b, Some(&bias), &mut out)
            })
            .expect("B is contiguous in one direction");
            assert_eq!(work.fma, (m * n * k) as u64);
            assert_eq!(work.add, (m * n) as u64);
            for i in 0..m {
                for j in 0..n {
                    let terms = (0..k).map(|p| a[i * k + p].to_f64() * at(p, j).to_f64());
                    let want = terms.clone().sum::<f64>() + bias[j].to_f64();
                    let scale = terms.map(f64::abs).sum::<f64>() + bias[j].to_f64().abs();
                    let got = out[i * n + j].to_f64();
                    assert!(
                        (got - want).abs() <= want.abs() * ulp + 1e-5 * scale,
                        "{:?} m={m} k={k} transposed={transposed} ({i}, {j}): {got} vs {want}",
                        T::DTYPE
                    );
                }
            }
        }
        for m in 1..=super::super::SMALL_M {
            for k in [37, CHUNK + 44] {
                for transposed in [true, false] {
                    case::<f32>(m, k, transposed, 0.0);
                    case::<half::bf16>(m, k, transposed, 1.0 / 256.0);
                    case::<half::f16>(m, k, transposed, 1.0 / 2048.0);
                }
            }
        }
    }

    /// The same for a bf16 weight (a bf16 model's tied head): converted as it is read,
    /// streamed on both threads; products of bf16 are exact in f32, and the output's
    /// rounding to bf16 (2⁻⁹ relative) is what the tolerance allows beyond the f32 sums.
    #[test]
    fn a_streamed_bf16_tied_head_matches_the_naive_product() {
        use half::bf16;
        let (m, k, n) = (1usize, 300usize, 4000usize);
        let val = |i: usize, s: usize| bf16::from_f32(((i * 7 + s) % 13) as f32 / 6.0 - 1.0);
        let a: Vec<bf16> = (0..m * k).map(|i| val(i, 1)).collect();
        let bt: Vec<bf16> = (0..n * k).map(|i| val(i, 4)).collect();
        let mut out = vec![bf16::ZERO; m * n];
        let work = super::super::on_threads(2, || {
            let (a, b) = (MatRef::rows(&a, 0, k), MatRef::transposed(&bt, 0, k));
            gemm_small(m, n, k, a, b, None, &mut out)
        })
        .expect("B is contiguous along k");
        assert_eq!(work.fma, (m * n * k) as u64);
        for j in 0..n {
            let terms = (0..k).map(|p| a[p].to_f64() * bt[j * k + p].to_f64());
            let want = terms.clone().sum::<f64>();
            let scale = terms.map(f64::abs).sum::<f64>();
            let got = out[j].to_f64();
            assert!(
                (got - want).abs() <= want.abs() / 256.0 + 1e-5 * scale,
                "(0, {j}): {got} vs {want}"
            );
        }
    }
}
