//! Helpers shared by kernels: contiguous reads and work-unit sizes.

use std::borrow::Cow;

use tally_core::{DType, Layout};

/// Elements per parallel work unit for elementwise kernels.
pub(crate) const CHUNK: usize = 16 * 1024;

/// The view's elements in row-major order: borrowed when contiguous, gathered otherwise.
pub(crate) fn contiguous<'a, T: Copy>(data: &'a [T], l: &Layout) -> Cow<'a, [T]> {
    match l.contiguous_range() {
        Some(r) => Cow::Borrowed(&data[r]),
        None => Cow::Owned(l.indices().map(|i| data[i]).collect()),
    }
}

/// Bytes of `n` elements of `dtype`.
pub(crate) fn bytes(n: usize, dtype: DType) -> u64 {
    (n * dtype.size_in_bytes()) as u64
}
