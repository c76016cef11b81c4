//! [`PackedB`]: a weight B (k, n) packed once, in the f32 micro-kernel's panel order, and
//! kept by the layer that owns it. Products with many rows then skip packing B (for a
//! model whose weights do not fit in cache, packing read and wrote every weight byte once
//! more per call); products with a few rows (a decode step) stream the same panels as
//! GEMVs. Counting is unchanged: every tile and GEMV row tallies the FMAs it ran.

use rayon::prelude::*;
use tally_core::{FloatElem, Work};

use super::aligned::Aligned;
use super::{block, detect, pack, run_tasks, Bias, Isa, MatRef, OutPtr, SMALL_M};

/// B (k, n) in NR-wide panels of k rows each (panel jp's row p at `(jp·k + p)·NR`), for
/// the micro-kernel of `isa`.
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    data: Aligned<f32>,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedB({}×{}, {})", self.k, self.n, self.isa.name())
    }
}

/// Panel width of `isa`'s f32 micro-kernel.
fn nr(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 32,
        Isa::Avx2 => 16,
        Isa::Portable => 8,
    }
}

impl PackedB {
    /// Packs B (k, n), read through `b`'s strides, for this host's micro-kernel.
    pub fn pack<T: FloatElem>(k: usize, n: usize, b: MatRef<'_, T>) -> PackedB {
        let isa = detect();
        let data = match isa {
            Isa::Avx512 => pack::pack_b::<T, 32>(k, n, b),
            Isa::Avx2 => pack::pack_b::<T, 16>(k, n, b),
            Isa::Portable => pack::pack_b::<T, 8>(k, n, b),
        };
        PackedB { isa, k, n, data }
    }

    /// Rows of B (the product's inner dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Element (p, j) of B.
    pub fn get(&self, p: usize, j: usize) -> f32 {
        let w = nr(self.isa);
        self.data[((j / w) * self.k + p) * w + j % w]
    }
}

/// C (m, n) = A (m, k) · B [+ bias (n)] with B packed. Returns the work executed: m·n·k
/// FMAs and one add per output when a bias is added.
pub fn gemm_prepacked<T: FloatElem>(
    m: usize,
    a: MatRef<'_, T>,
    b: &PackedB,
    bias: Option<&[T]>,
    out: &mut [T],
) -> Work {
    match b.isa {
        Isa::Avx512 => with::<T, 8, 32>(m, a, b, bias, out),
        Isa::Avx2 => with::<T, 6, 16>(m, a, b, bias, out),
        Isa::Portable => with::<T, 4, 8>(m, a, b, bias, out),
    }
}

/// Weight elements from which a few-row product runs its GEMVs on the pool.
const GEMV_PARALLEL_MIN: usize = 1 << 16;

fn with<T: FloatElem, const MR: usize, const NR: usize>(
    m: usize,
    a: MatRef<'_, T>,
    b: &PackedB,
    bias: Option<&[T]>,
    out: &mut [T],
) -> Work {
    let (k, n) = (b.k, b.n);
    assert_eq!(out.len(), m * n, "gemm output buffer");
    if m == 0 || n == 0 {
        return Work::ZERO;
    }
    if m > SMALL_M {
        let outp = OutPtr(out.as_mut_ptr());
        return run_tasks(m, n, k, MR, n.div_ceil(NR), |rows, panels| {
            block::<T, MR, NR>(
                b.isa,
                rows,
                panels,
                n,
                k,
                a,
                &b.data,
                Bias::columns(bias),
                outp,
            )
        });
    }
    // A few rows: each row of A sweeps the panels, NR accumulators at a time.
    let mut work = Work::ZERO;
    for i in 0..m {
        let row: Vec<f32> = (0..k)
            .map(|p| a.data[a.offset + i * a.rs + p * a.cs].to_f32())
            .collect();
        let dst = &mut out[i * n..(i + 1) * n];
        let gemv = |c0: usize, d: &mut [T]| -> Work {
            let mut work = Work::ZERO;
            for (jp, cols) in d.chunks_mut(NR).enumerate() {
                let panel = &b.data[((c0 / NR + jp) * k) * NR..((c0 / NR + jp + 1) * k) * NR];
                let mut acc = [0f32; NR];
                for (p, &x) in row.iter().enumerate() {
                    let lane = &panel[p * NR..(p + 1) * NR];
                    for l in 0..NR {
                        acc[l] += x * lane[l];
                    }
                }
                match bias {
                    Some(bias) => {
                        let j0 = c0 + jp * NR;
                        for ((o, a), b) in cols.iter_mut().zip(acc).zip(&bias[j0..]) {
                            *o = T::from_f32(a + b.to_f32());
                        }
                        work.add += cols.len() as u64;
                    }
                    None => {
                        for (o, a) in cols.iter_mut().zip(acc) {
                            *o = T::from_f32(a);
                        }
                    }
                }
                work.fma += (cols.len() * k) as u64;
            }
            work
        };
        let threads = rayon::current_num_threads();
        work += if k * n >= GEMV_PARALLEL_MIN && threads > 1 {
            // Two tasks per thread, in whole panels, so no thread is left with the tail.
            let cols = n.div_ceil(NR).div_ceil(2 * threads) * NR;
            dst.par_chunks_mut(cols)
                .enumerate()
                .map(|(t, d)| gemv(t * cols, d))
                .sum::<Work>()
        } else {
            gemv(0, dst)
        };
    }
    work
}
