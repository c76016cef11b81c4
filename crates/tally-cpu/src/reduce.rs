//! Reductions over one dimension; each output group counts the terms it combined.

use rayon::prelude::*;
use tally_core::{Counted, FloatElem, Layout, ReduceOp, Work};

use crate::storage::{CpuElem, CpuStorage};
use crate::util::{bytes, contiguous};

/// `op` over `dim` of the view, the dimension kept with size 1. Argmax yields u32.
pub(crate) fn reduce<T: FloatElem + CpuElem>(
    x: &[T],
    l: &Layout,
    dim: usize,
    op: ReduceOp,
) -> Counted<CpuStorage> {
    let src = contiguous(x, l);
    let dims = l.dims();
    let outer: usize = dims[..dim].iter().product();
    let n = dims[dim];
    let inner: usize = dims[dim + 1..].iter().product();
    let groups = outer * inner;
    let results: Vec<(f32, u32)> = (0..groups)
        .into_par_iter()
        .map(|g| {
            let (o, i) = (g / inner, g % inner);
            let at = |j: usize| src[(o * n + j) * inner + i].to_f32();
            match op {
                ReduceOp::Sum => ((0..n).map(at).sum(), 0),
                ReduceOp::Mean => ((0..n).map(at).sum::<f32>() * (1.0 / n as f32), 0),
                ReduceOp::Max | ReduceOp::Argmax => {
                    let (mut best, mut arg) = (f32::NEG_INFINITY, 0u32);
                    for j in 0..n {
                        let v = at(j);
                        if j == 0 || v > best {
                            best = v;
                            arg = j as u32;
                        }
                    }
                    (best, arg)
                }
            }
        })
        .collect();
    let g64 = groups as u64;
    let mut work = Work {
        add: g64 * n as u64,
        mul: if op == ReduceOp::Mean { g64 } else { 0 },
        ..Work::ZERO
    };
    work.bytes_read = bytes(l.distinct_elems(), T::DTYPE);
    let out = if op == ReduceOp::Argmax {
        work.bytes_written = bytes(groups, tally_core::DType::U32);
        CpuStorage::U32(results.into_iter().map(|r| r.1).collect())
    } else {
        work.bytes_written = bytes(groups, T::DTYPE);
        CpuStorage::from_vec(
            results
                .into_iter()
                .map(|r| T::from_f32(r.0))
                .collect::<Vec<T>>(),
        )
    };
    Counted::executed(out, work)
}
