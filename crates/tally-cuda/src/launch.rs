//! Launching Tally's kernels: grid shapes, the by-value argument structs that mirror the
//! kernels' C structs, and the counted region that reads the counter buffer back as a
//! [`Work`].

use cudarc::driver::{DeviceRepr, LaunchConfig};
use tally_core::{DType, Error, Layout, Result};

use crate::CudaDevice;

/// Threads per block of every grid-stride and per-row kernel (a multiple of 32, as
/// `tally_flush` needs).
pub(crate) const BLOCK: u32 = 256;

/// A grid-stride launch over `n` items: enough blocks to fill the GPU, at most one thread
/// per item.
pub(crate) fn grid_stride(dev: &CudaDevice, n: usize) -> LaunchConfig {
    let wanted = n.div_ceil(BLOCK as usize).max(1);
    let cap = dev.sm_count() as usize * 16;
    LaunchConfig {
        grid_dim: (wanted.min(cap) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row, `rows` rows (the grid's x limit is 2³¹ − 1).
pub(crate) fn per_row(op: &'static str, rows: usize) -> Result<LaunchConfig> {
    if rows > i32::MAX as usize {
        return Err(Error::InvalidArgument {
            op,
            reason: format!("{rows} rows: the CUDA kernel takes at most 2^31 - 1"),
        });
    }
    Ok(LaunchConfig {
        grid_dim: (rows.max(1) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// The kernels' name suffix for a float dtype (`gelu_erf_bf16`).
pub(crate) fn suffix(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::BF16 => Ok("bf16"),
        DType::F16 => Ok("f16"),
        other => Err(Error::UnsupportedDType { op, dtype: other }),
    }
}

/// `TallyView4` of `kernels/copy.cu`: a view's dims and element strides, rank ≤ 4, padded at
/// the front with (1, 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct View4 {
    pub dims: [u64; 4],
    pub strides: [i64; 4],
}

// SAFETY: #[repr(C)] plain data, laid out as the kernels' `TallyView4`.
unsafe impl DeviceRepr for View4 {}

impl View4 {
    /// The view of `l` (its offset aside), with dimensions that are contiguous with their
    /// neighbour merged; `None` when more than four remain.
    pub(crate) fn of(l: &Layout) -> Option<View4> {
        let mut dims: Vec<(usize, usize)> = Vec::with_capacity(l.dims().len());
        for (&d, &s) in l.dims().iter().zip(l.strides()) {
            if d == 1 {
                continue;
            }
            match dims.last_mut() {
                Some(last) if last.1 == s * d => *last = (last.0 * d, s),
                _ => dims.push((d, s)),
            }
        }
        if dims.len() > 4 {
            return None;
        }
        let mut v = View4 {
            dims: [1; 4],
            strides: [0; 4],
        };
        let pad = 4 - dims.len();
        for (i, (d, s)) in dims.into_iter().enumerate() {
            v.dims[pad + i] = d as u64;
            v.strides[pad + i] = s as i64;
        }
        Some(v)
    }
}

/// Launches kernel `$name` (a `String` or `&str`) of `kernels/$file` on `$dev`'s stream with
/// `$cfg`, passing each argument by value (device addresses as `u64`).
macro_rules! launch {
    ($dev:expr, $file:expr, $name:expr, $cfg:expr; $($arg:expr),* $(,)?) => {{
        let name: &str = &$name;
        let f = $dev.function($file, name)?;
        let stream = $dev.stream();
        let mut b = stream.launch_builder(&f);
        use cudarc::driver::PushKernelArg as _;
        $(
            let a = $arg;
            b.arg(&a);
        )*
        // SAFETY: the arguments match the kernel's C signature (kernels/README.md), and
        // every address points into a live buffer of the right size for the launch.
        unsafe { b.launch($cfg) }
            .map(|_| ())
            .map_err(|e| $dev.error(name.to_string(), e))
    }};
}
pub(crate) use launch;

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Shape;

    #[test]
    fn views_merge_contiguous_dimensions() {
        let l = Layout::contiguous(Shape::from(vec![2, 3, 4, 5, 6]));
        let v = View4::of(&l).unwrap();
        assert_eq!(v.dims, [1, 1, 1, 720]);
        assert_eq!(v.strides[3], 1);
        let t = Layout::contiguous(Shape::from(vec![2, 3, 4]))
            .transpose(0, 2)
            .unwrap();
        let v = View4::of(&t).unwrap();
        assert_eq!(v.dims, [1, 4, 3, 2]);
        assert_eq!(v.strides, [0, 1, 4, 12]);
    }

    #[test]
    fn broadcast_dimensions_keep_stride_zero() {
        let l = Layout::contiguous(Shape::from(vec![1, 4]))
            .broadcast_as(&Shape::from(vec![3, 4]))
            .unwrap();
        let v = View4::of(&l).unwrap();
        assert_eq!(v.dims, [1, 1, 3, 4]);
        assert_eq!(v.strides, [0, 0, 0, 1]);
    }
}
