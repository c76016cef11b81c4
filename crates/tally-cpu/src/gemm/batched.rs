//! Batched products: one [`gemm`](super::gemm) per batch entry over broadcast layouts.

use tally_core::FloatElem;

use super::{gemm, MatRef};

/// Batched product over layouts already broadcast to (…, m, k) and (…, k, n): one
/// [`gemm`] per batch entry, each reading its operands in place through their strides.
pub(crate) fn batched<T: FloatElem>(
    a: &[T],
    al: &tally_core::Layout,
    b: &[T],
    bl: &tally_core::Layout,
    bias: Option<(&[T], &tally_core::Layout)>,
) -> tally_core::Counted<Vec<T>> {
    let r = al.dims().len();
    let (m, k, n) = (al.dims()[r - 2], al.dims()[r - 1], bl.dims()[r - 1]);
    let batch: usize = al.dims()[..r - 2].iter().product();
    let bias = bias.map(|(d, l)| crate::util::contiguous(d, l));
    // Every element is written by its product (a first k slice stores, k = 0 fills).
    let mut out = crate::buffers::for_overwrite(batch * m * n, T::default());
    let mut work = tally_core::Work::ZERO;
    let offset = |l: &tally_core::Layout, mut idx: usize| {
        let mut off = l.offset();
        for d in (0..r - 2).rev() {
            off += (idx % l.dims()[d]) * l.strides()[d];
            idx /= l.dims()[d];
        }
        off
    };
    if m * n > 0 {
        for (i, dst) in out.chunks_mut(m * n).enumerate() {
            let ar = MatRef {
                data: a,
                offset: offset(al, i),
                rs: al.strides()[r - 2],
                cs: al.strides()[r - 1],
            };
            let br = MatRef {
                data: b,
                offset: offset(bl, i),
                rs: bl.strides()[r - 2],
                cs: bl.strides()[r - 1],
            };
            work += gemm(m, n, k, ar, br, bias.as_deref(), dst);
        }
    }
    work.bytes_read = crate::util::bytes(
        al.distinct_elems() + bl.distinct_elems() + bias.as_ref().map_or(0, |b| b.len()),
        T::DTYPE,
    );
    work.bytes_written = crate::util::bytes(out.len(), T::DTYPE);
    tally_core::Counted::executed(out, work)
}
