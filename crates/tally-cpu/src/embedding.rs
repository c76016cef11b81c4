//! Row gather by integer ids; each gathered row counts its bytes.

use tally_core::{Counted, Error, FloatElem, Layout, Result, Work};

use crate::buffers;
use crate::util::{bytes, contiguous};

/// Rows of the (vocab, dim) `table` picked by `ids` (already widened to u64, read through
/// `id_view`'s layout and dtype).
pub(crate) fn embedding<T: FloatElem>(
    table: &[T],
    tl: &Layout,
    ids: &[u64],
    id_view: (&Layout, tally_core::DType),
) -> Result<Counted<Vec<T>>> {
    let (vocab, dim) = (tl.dims()[0], tl.dims()[1]);
    let table = contiguous(table, tl);
    let mut out = buffers::empty(ids.len() * dim);
    let mut work = Work::ZERO;
    for (pos, &id) in ids.iter().enumerate() {
        let id = id as usize;
        if id >= vocab {
            return Err(Error::invalid(
                "embedding",
                format!("id {id} at position {pos} is outside the table of {vocab} rows"),
            ));
        }
        out.extend_from_slice(&table[id * dim..(id + 1) * dim]);
        work.bytes_read += bytes(dim, T::DTYPE);
    }
    work.bytes_read += bytes(id_view.0.distinct_elems(), id_view.1);
    work.bytes_written = bytes(out.len(), T::DTYPE);
    Ok(Counted::executed(out, work))
}

/// The ids as u64 in row-major order, rejecting negatives.
pub(crate) fn widen_ids<I: Copy + TryInto<u64> + std::fmt::Display + 'static>(
    ids: &[I],
    l: &Layout,
) -> Result<Vec<u64>> {
    contiguous(ids, l)
        .iter()
        .enumerate()
        .map(|(pos, &id)| {
            id.try_into().map_err(|_| {
                Error::invalid(
                    "embedding",
                    format!("id {id} at position {pos} is negative"),
                )
            })
        })
        .collect()
}
