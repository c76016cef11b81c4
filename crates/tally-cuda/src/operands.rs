//! The operands the CUDA kernels read: views made contiguous (gathered, with the copy
//! counted into the op), broadcast rows the binary kernels read in place, attention's
//! strided heads, copies into strided destinations, and i64 ids narrowed to u32.

use tally_core::{DType, Error, Layout, Result};

use crate::launch::{grid_stride, launch, suffix, View4};
use crate::CudaStorage;

/// A contiguous operand: the address of its first element, and the gathered copy that
/// holds it when the view was not contiguous.
pub(crate) struct Dense {
    pub ptr: u64,
    _copy: Option<CudaStorage>,
}

impl Dense {
    /// An operand read in place.
    pub(crate) fn borrowed(ptr: u64) -> Dense {
        Dense { ptr, _copy: None }
    }
}

/// The view `l` of `s` as a contiguous operand: in place when it is contiguous, else
/// gathered by `copy_strided` (counted into `counters` when non-zero).
pub(crate) fn dense(s: &CudaStorage, l: &Layout, counters: u64) -> Result<Dense> {
    if l.is_contiguous() {
        return Ok(Dense::borrowed(s.ptr(l.offset())));
    }
    let mut copy = gather(s, l, counters)?;
    Ok(Dense {
        ptr: copy.ptr_mut(0),
        _copy: Some(copy),
    })
}

/// `l`'s elements copied into a new contiguous buffer.
pub(crate) fn gather(s: &CudaStorage, l: &Layout, counters: u64) -> Result<CudaStorage> {
    let dev = s.cuda_device();
    let n = l.shape().elem_count();
    let mut out = CudaStorage::alloc(dev, s.dtype(), n)?;
    if n == 0 {
        return Ok(out);
    }
    let view = View4::of(l).ok_or_else(|| Error::InvalidArgument {
        op: "copy",
        reason: format!(
            "a view of dims {:?} and strides {:?} has more than 4 non-mergeable dimensions",
            l.dims(),
            l.strides()
        ),
    })?;
    let y = out.ptr_mut(0);
    let name = format!("copy_strided_{}", copy_suffix("copy", s.dtype())?);
    launch!(dev, "copy.cu", name, grid_stride(dev, n); s.ptr(l.offset()), y, view, counters)?;
    Ok(out)
}

/// The copy kernels' suffix for `dtype`: a copy moves bits, so u32 uses the f32 kernel.
pub(crate) fn copy_suffix(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::U32 => Ok("f32"),
        other => suffix(op, other),
    }
}

/// An optional operand's address (0 for none: the kernels take null).
pub(crate) fn opt_ptr(v: &Option<Dense>) -> u64 {
    v.as_ref().map_or(0, |d| d.ptr)
}

/// The row length of `l` when it is a row broadcast: trailing dimensions contiguous, every
/// leading one of stride 0 (what `a + bias` gives the binary kernels' `_bcast` entries).
pub(crate) fn row_broadcast(l: &Layout) -> Option<usize> {
    let v = View4::of(l)?;
    let first = v.dims.iter().position(|&d| d > 1)?;
    let last = 3;
    (v.strides[last] == 1 && (first..last).all(|k| v.strides[k] == 0) && first < last)
        .then_some(v.dims[last] as usize)
}

/// The (batch, head, row) strides of an attention operand whose last dimension is
/// contiguous, or a gathered contiguous copy and its strides.
pub(crate) fn attention_operand(
    s: &CudaStorage,
    l: &Layout,
    counters: u64,
) -> Result<(Dense, [i64; 3])> {
    let (d, st) = (l.dims(), l.strides());
    if st[3] == 1 || d[3] <= 1 {
        let sr = if d[2] <= 1 { d[3] } else { st[2] };
        return Ok((
            Dense::borrowed(s.ptr(l.offset())),
            [st[0] as i64, st[1] as i64, sr as i64],
        ));
    }
    let g = dense(s, l, counters)?;
    Ok((
        g,
        [
            (d[1] * d[2] * d[3]) as i64,
            (d[2] * d[3]) as i64,
            d[3] as i64,
        ],
    ))
}

/// `src` (its view `sl`) copied into `dst` seen through `dl` (same dims).
pub(crate) fn copy_into(
    src: &CudaStorage,
    sl: &Layout,
    dst: &mut CudaStorage,
    dl: &Layout,
    counters: u64,
) -> Result<()> {
    let n = sl.shape().elem_count();
    if n == 0 {
        return Ok(());
    }
    let dev = src.cuda_device().clone();
    // Both views over the same dims: merge dimensions only where both allow it, by
    // viewing them through a common 4-D split.
    let (sv, dv) = match (View4::of(sl), View4::of(dl)) {
        (Some(s), Some(d)) if s.dims == d.dims => (s, d),
        _ => {
            let dims = sl.dims();
            if dims.len() > 4 {
                return Err(Error::InvalidArgument {
                    op: "concat",
                    reason: format!("copying a rank-{} view into another", dims.len()),
                });
            }
            let pad = |st: &[usize]| {
                let mut v = View4 {
                    dims: [1; 4],
                    strides: [0; 4],
                };
                let off = 4 - dims.len();
                for i in 0..dims.len() {
                    v.dims[off + i] = dims[i] as u64;
                    v.strides[off + i] = st[i] as i64;
                }
                v
            };
            (pad(sl.strides()), pad(dl.strides()))
        }
    };
    let name = format!("copy_into_{}", copy_suffix("concat", src.dtype())?);
    let y = dst.ptr_mut(dl.offset());
    launch!(dev, "copy.cu", name, grid_stride(&dev, n); src.ptr(sl.offset()), y, sv, dv, counters)
}

/// i64 ids (a view) as a device buffer of u32, each checked to fit.
pub(crate) fn narrow_ids(ids: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let host = ids.to_host()?;
    let tally_cpu::CpuStorage::I64(v) = host else {
        unreachable!("checked to be i64 by the caller")
    };
    let mut out = Vec::with_capacity(l.shape().elem_count());
    for i in l.indices() {
        let id = v[i];
        out.push(u32::try_from(id).map_err(|_| Error::InvalidArgument {
            op: "embedding",
            reason: format!("id {id} is not a valid u32 row index"),
        })?);
    }
    CudaStorage::from_host(ids.cuda_device(), &tally_cpu::CpuStorage::U32(out))
}
