//! Data movement: strided copies, concatenation and dtype casts (bytes, no FPO).

use tally_core::{Counted, Layout, WithDType, Work};

use crate::buffers;
use crate::util::{bytes, contiguous};

/// The view copied into a new contiguous buffer.
pub(crate) fn copy<T: WithDType>(x: &[T], l: &Layout) -> Counted<Vec<T>> {
    let out = contiguous(x, l).into_owned();
    let work = Work::ZERO.with_bytes(
        bytes(l.distinct_elems(), T::DTYPE),
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}

/// Views joined along `dim`: for each outer index, each part contributes its block.
pub(crate) fn concat<T: WithDType>(parts: &[(&[T], &Layout)], dim: usize) -> Counted<Vec<T>> {
    let srcs: Vec<_> = parts.iter().map(|(d, l)| contiguous(d, l)).collect();
    let first = parts[0].1.dims();
    let outer: usize = first[..dim].iter().product();
    let inner: usize = first[dim + 1..].iter().product();
    let total: usize = srcs.iter().map(|s| s.len()).sum();
    let mut out = buffers::empty(total);
    let mut work = Work::ZERO;
    for o in 0..outer {
        for (src, (_, l)) in srcs.iter().zip(parts) {
            let block = l.dims()[dim] * inner;
            out.extend_from_slice(&src[o * block..(o + 1) * block]);
        }
    }
    for (_, l) in parts {
        work.bytes_read += bytes(l.distinct_elems(), T::DTYPE);
    }
    work.bytes_written = bytes(out.len(), T::DTYPE);
    Counted::executed(out, work)
}

/// `src` (viewed through `sl`) written into `dst`, contiguous with dims `dst_dims`, at
/// positions `start..start + sl.dims()[dim]` along `dim`: one block of the source's
/// positions per outer index. Reads the source once and writes its elements once.
pub(crate) fn write_slice<T: WithDType>(
    dst: &mut [T],
    dst_dims: &[usize],
    dim: usize,
    start: usize,
    src: &[T],
    sl: &Layout,
) -> Work {
    let s = contiguous(src, sl);
    let outer: usize = dst_dims[..dim].iter().product();
    let inner: usize = dst_dims[dim + 1..].iter().product();
    let block = sl.dims()[dim] * inner;
    for o in 0..outer {
        let at = (o * dst_dims[dim] + start) * inner;
        dst[at..at + block].copy_from_slice(&s[o * block..(o + 1) * block]);
    }
    Work::ZERO.with_bytes(
        bytes(sl.distinct_elems(), T::DTYPE),
        bytes(s.len(), T::DTYPE),
    )
}

/// The view converted element by element through f64 (exact for every pair Tally casts
/// between except rounding to the narrower float, which rounds to nearest).
pub(crate) fn cast<S: WithDType, D: WithDType>(x: &[S], l: &Layout) -> Counted<Vec<D>> {
    let src = contiguous(x, l);
    let mut out: Vec<D> = buffers::empty(src.len());
    out.extend(src.iter().map(|v| D::from_f64(v.to_f64())));
    let work = Work::ZERO.with_bytes(
        bytes(l.distinct_elems(), S::DTYPE),
        bytes(out.len(), D::DTYPE),
    );
    Counted::executed(out, work)
}
