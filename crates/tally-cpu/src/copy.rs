//! Data movement: strided copies, concatenation and dtype casts (bytes, no FPO).

use tally_core::{Counted, Layout, WithDType, Work};

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
    let mut out = Vec::with_capacity(total);
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

/// The view converted element by element through f64 (exact for every pair Tally casts
/// between except rounding to the narrower float, which rounds to nearest).
pub(crate) fn cast<S: WithDType, D: WithDType>(x: &[S], l: &Layout) -> Counted<Vec<D>> {
    let out: Vec<D> = contiguous(x, l)
        .iter()
        .map(|v| D::from_f64(v.to_f64()))
        .collect();
    let work = Work::ZERO.with_bytes(
        bytes(l.distinct_elems(), S::DTYPE),
        bytes(out.len(), D::DTYPE),
    );
    Counted::executed(out, work)
}
