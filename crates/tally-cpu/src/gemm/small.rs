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

/// C = A·B [+ bias] for small m, or `None` when B is strided in both directions.
pub(super) fn gemm_small<T: FloatElem>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: Option<&[T]>,
    out: &mut [T],
) -> Option<Work> {
    if b.rs != 1 && b.cs != 1 {
        return None;
    }
    let threads = rayon::current_num_threads();
    // A large weight read as dot products (a tied lm_head): memory-bound, so both threads
    // stream it, each writing its column range of the output directly.
    let streamed = b.rs == 1 && k * n >= PARALLEL_MIN && threads > 1;
    // The row and the accumulators live in this thread's scratch (no accumulators when
    // the output is written directly: a vocabulary-wide row of them would be one more
    // buffer for every thread that ever runs a decode step).
    Some(super::scratch::with::<f32, _>(k, |row, acc| {
        acc.clear();
        acc.resize(if streamed { 0 } else { n }, 0.0);
        let mut work = Work::ZERO;
        for i in 0..m {
            for (p, r) in row.iter_mut().enumerate() {
                *r = a.data[a.offset + i * a.rs + p * a.cs].to_f32();
            }
            if streamed {
                // In whole cache lines of outputs per task.
                let per = n.div_ceil(2 * threads).next_multiple_of(16);
                let row = &*row;
                let dst = &mut out[i * n..(i + 1) * n];
                dst.par_chunks_mut(per).enumerate().for_each(|(t, part)| {
                    for (jj, c) in part.iter_mut().enumerate() {
                        let j = t * per + jj;
                        let src = &b.data[b.offset + j * b.cs..][..k];
                        let sum = dot(row, src);
                        *c = T::from_f32(sum + bias.map_or(0.0, |b| b[j].to_f32()));
                    }
                });
                work.add += if bias.is_some() { n as u64 } else { 0 };
                work.fma += (n * k) as u64;
                continue;
            } else if b.rs == 1 {
                for (j, c) in acc.iter_mut().enumerate() {
                    *c = dot(row, &b.data[b.offset + j * b.cs..][..k]);
                }
            } else {
                acc.iter_mut().for_each(|c| *c = 0.0);
                for (p, &x) in row.iter().enumerate() {
                    let src = &b.data[b.offset + p * b.rs..][..n];
                    for (c, s) in acc.iter_mut().zip(src) {
                        *c += x * s.to_f32();
                    }
                }
            }
            work.add += super::store_sums(&mut out[i * n..(i + 1) * n], acc, bias);
            // This row: n outputs of k multiply-adds each (a dot product or k axpy steps).
            work.fma += (n * k) as u64;
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
