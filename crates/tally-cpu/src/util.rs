//! Helpers shared by kernels: contiguous reads, work-unit sizes, and whether to run
//! elementwise loops in their AVX-512 copies.

use std::ops::Deref;

use rayon::prelude::*;
use tally_core::{DType, Layout, Work};

use crate::buffers;

/// Whether elementwise loops should run in their AVX-512F copies (`*_avx512`, compiled
/// with `#[target_feature(enable = "avx512f,fma")]` around an `#[inline(always)]` body):
/// there f16/bf16 ↔ f32 conversions vectorise 16 lanes wide instead of the baseline's 4
/// (SSE2); a bf16 relu took 0.7 ns per element through SSE2 against 0.15 for f32. True
/// only where [`crate::gemm::detect`] found AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn wide() -> bool {
    crate::gemm::detect() == crate::gemm::Isa::Avx512
}

/// Elements per parallel work unit for elementwise kernels.
pub(crate) const CHUNK: usize = 16 * 1024;

/// A view's elements in row-major order: borrowed when the view is contiguous, else
/// gathered into a pooled buffer that returns to the pool when this is dropped.
pub(crate) enum Contig<'a, T: 'static> {
    /// The view's own elements.
    Borrowed(&'a [T]),
    /// A gathered copy.
    Owned(Vec<T>),
}

impl<T: Copy + 'static> Contig<'_, T> {
    /// The elements as an owned vector (a pooled copy when borrowed).
    pub(crate) fn into_owned(mut self) -> Vec<T> {
        match &mut self {
            Contig::Borrowed(s) => {
                let mut v = buffers::empty(s.len());
                v.extend_from_slice(s);
                v
            }
            Contig::Owned(v) => std::mem::take(v),
        }
    }
}

impl<T: 'static> Deref for Contig<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Contig::Borrowed(s) => s,
            Contig::Owned(v) => v,
        }
    }
}

impl<T: 'static> Drop for Contig<'_, T> {
    fn drop(&mut self) {
        if let Contig::Owned(v) = self {
            buffers::give(std::mem::take(v));
        }
    }
}

/// The view's elements in row-major order: borrowed when contiguous, gathered otherwise.
pub(crate) fn contiguous<'a, T: Copy + 'static>(data: &'a [T], l: &Layout) -> Contig<'a, T> {
    match l.contiguous_range() {
        Some(r) => Contig::Borrowed(&data[r]),
        None => Contig::Owned(gather(data, l)),
    }
}

/// The view's elements in row-major order, copied one row of the last dimension at a
/// time: a slice copy when that dimension is dense (a transpose of the outer axes, the
/// usual case), a strided walk otherwise. Row starts advance like an odometer.
fn gather<T: Copy + 'static>(data: &[T], l: &Layout) -> Vec<T> {
    let (dims, strides) = (l.dims(), l.strides());
    let n = l.shape().elem_count();
    let mut out = buffers::empty(n);
    if n == 0 {
        return out;
    }
    let r = dims.len();
    let (last, step) = if r == 0 {
        (1, 1)
    } else {
        (dims[r - 1], strides[r - 1])
    };
    let outer = r.saturating_sub(1);
    let mut counter = tally_core::shape::Dims::from_elem(0, outer);
    let mut start = l.offset();
    for _ in 0..n / last {
        if step == 1 {
            out.extend_from_slice(&data[start..start + last]);
        } else {
            out.extend((0..last).map(|j| data[start + j * step]));
        }
        // Advance the row odometer over the outer dimensions.
        for d in (0..outer).rev() {
            counter[d] += 1;
            start += strides[d];
            if counter[d] < dims[d] {
                break;
            }
            start -= strides[d] * dims[d];
            counter[d] = 0;
        }
    }
    out
}

/// Bytes of `n` elements of `dtype`.
pub(crate) fn bytes(n: usize, dtype: DType) -> u64 {
    (n * dtype.size_in_bytes()) as u64
}

/// Work (in element-operations, a transcendental weighing ~16) below which a kernel stays
/// on the calling thread (measured: waking the pool costs ~20 µs, a relu of 46k elements 5 µs):
/// waking the pool costs more than it saves.
pub(crate) const PAR_MIN: usize = 256 * 1024;

/// Work one pool task should hold at least, so its share of waking and stealing stays
/// small; a task holds fewer units than [`CHUNK`] elements when they cost more than this.
const TASK_MIN: usize = PAR_MIN / 4;

/// Runs `f(unit_index, unit)` over `out` split into units of `unit` elements and sums the
/// [`Work`] each unit reports. Units are grouped into tasks of about [`CHUNK`] elements, or
/// fewer when that much would cost more than [`TASK_MIN`] (an attention head of 4,096
/// outputs costs a million FMAs: four to a task left 12 heads as 8 on one thread and 4 on
/// the other), and run on the pool when the call's work (`units × cost_per_unit`) reaches
/// [`PAR_MIN`].
pub(crate) fn for_units<T, F>(out: &mut [T], unit: usize, cost_per_unit: usize, f: F) -> Work
where
    T: Send,
    F: Fn(usize, &mut [T]) -> Work + Sync,
{
    let unit = unit.max(1);
    let units = out.len().div_ceil(unit);
    if units * cost_per_unit < PAR_MIN || rayon::current_num_threads() == 1 {
        return out.chunks_mut(unit).enumerate().map(|(i, u)| f(i, u)).sum();
    }
    let per_task = (CHUNK / unit)
        .min(TASK_MIN.div_ceil(cost_per_unit.max(1)))
        .max(1);
    out.par_chunks_mut(per_task * unit)
        .enumerate()
        .map(|(t, block)| {
            block
                .chunks_mut(unit)
                .enumerate()
                .map(|(i, u)| f(t * per_task + i, u))
                .sum::<Work>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use tally_core::{Layout, Shape};

    use super::gather;

    #[test]
    fn gather_matches_the_strided_index_walk() {
        let data: Vec<u32> = (0..2 * 3 * 4 * 5).collect();
        let base = Layout::contiguous(Shape::from([2, 3, 4, 5]));
        for perm in [[0, 2, 1, 3], [3, 1, 0, 2], [1, 0, 3, 2], [0, 1, 2, 3]] {
            let l = base.permute(&perm).unwrap();
            let want: Vec<u32> = l.indices().map(|i| data[i]).collect();
            assert_eq!(gather(&data, &l), want, "permutation {perm:?}");
        }
        let narrowed = base.narrow(2, 1, 2).unwrap().transpose(0, 1).unwrap();
        let want: Vec<u32> = narrowed.indices().map(|i| data[i]).collect();
        assert_eq!(gather(&data, &narrowed), want);
    }
}

// Note for kernels outside `gemm`: `f32::mul_add` compiles to a libm `fmaf` call unless the
// function is built with the `fma` target feature, so plain `a * b + c` is used there; it
// is still counted as one FMA by the convention (docs/FPO.md counts operations, not
// instructions).
