//! Batched matrix products on cuBLAS (`cublasGemmStridedBatchedEx`, f32 accumulation),
//! counted from the call's shape (`Source::Launch`): cuBLAS's kernels cannot count.

use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType};
use tally_core::{cost, Counted, DType, Error, Layout, Result};

use crate::counters::launched;
use crate::launch::{grid_stride, launch, suffix, View4};
use crate::operands::{dense, Dense};
use crate::CudaStorage;

/// One operand (…, rows, cols) as cuBLAS reads it: its address, whether it is stored
/// transposed (column-major), its leading dimension and its batch stride.
struct Operand {
    data: Dense,
    transposed: bool,
    ld: usize,
    batch_stride: usize,
}

/// The operand behind `l` (…, rows, cols), read in place when its two inner dimensions are
/// row- or column-major and its batch dimensions have one stride, else gathered.
fn operand(s: &CudaStorage, l: &Layout, batch: usize) -> Result<Operand> {
    let (d, st) = (l.dims(), l.strides());
    let r = d.len();
    let (rows, cols) = (d[r - 2], d[r - 1]);
    let (sr, sc) = (st[r - 2], st[r - 1]);
    let batch_stride = uniform_batch_stride(&d[..r - 2], &st[..r - 2]);
    let inner = if sc == 1 && (sr >= cols || rows == 1) {
        Some((false, if rows == 1 { cols } else { sr }))
    } else if sr == 1 && (sc >= rows || cols == 1) {
        Some((true, if cols == 1 { rows } else { sc }))
    } else {
        None
    };
    match (inner, batch_stride) {
        (Some((transposed, ld)), Some(bs)) if ld > 0 => Ok(Operand {
            data: Dense::borrowed(s.ptr(l.offset())),
            transposed,
            ld,
            batch_stride: if batch <= 1 { 0 } else { bs },
        }),
        _ => Ok(Operand {
            data: dense(s, l, 0)?,
            transposed: false,
            ld: cols,
            batch_stride: rows * cols,
        }),
    }
}

/// The one stride that steps through the flattened batch dimensions, if there is one.
fn uniform_batch_stride(dims: &[usize], strides: &[usize]) -> Option<usize> {
    let mut it = dims.iter().zip(strides).filter(|(&d, _)| d > 1).rev();
    let Some((&d0, &s0)) = it.next() else {
        return Some(0);
    };
    let mut expect = s0 * d0;
    for (&d, &s) in it {
        if s != expect {
            return None;
        }
        expect = s * d;
    }
    Some(s0)
}

pub(crate) fn data_type(dtype: DType) -> Result<cudaDataType> {
    match dtype {
        DType::F32 => Ok(cudaDataType::CUDA_R_32F),
        DType::F16 => Ok(cudaDataType::CUDA_R_16F),
        DType::BF16 => Ok(cudaDataType::CUDA_R_16BF),
        other => Err(Error::UnsupportedDType {
            op: "matmul",
            dtype: other,
        }),
    }
}

fn int(what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::InvalidArgument {
        op: "matmul",
        reason: format!("{what} = {v} exceeds cuBLAS's 32-bit sizes"),
    })
}

/// One `cublasGemmStridedBatchedEx` call in cuBLAS's column-major terms: C (m × n) =
/// op(A) (m × k) · op(B) (k × n) + beta·C, each operand (address, transposed, leading
/// dimension, batch stride); alpha = 1, all operands of `ty`, f32 scalars.
pub(crate) struct RawGemm {
    pub ty: cudaDataType,
    pub compute: cublasComputeType_t,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: (u64, bool, usize, usize),
    pub b: (u64, bool, usize, usize),
    /// (address, leading dimension, batch stride).
    pub c: (u64, usize, usize),
    pub batch: usize,
    pub beta: f32,
}

impl RawGemm {
    /// Queues the product on `dev`'s stream.
    ///
    /// # Safety
    /// Every address must point at a live device buffer of `ty` elements covering its
    /// operand's extent (leading dimension × columns, per batch entry).
    pub(crate) unsafe fn run(&self, dev: &crate::CudaDevice) -> Result<()> {
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        let alpha: f32 = 1.0;
        // cuBLAS works on the context current on this thread.
        dev.bind()?;
        // SAFETY: the caller vouches for the addresses; alpha and beta are host f32
        // (pointer mode host, a 32F compute type).
        unsafe {
            cudarc::cublas::result::gemm_strided_batched_ex(
                *dev.blas().handle(),
                op(self.a.1),
                op(self.b.1),
                int("m", self.m)?,
                int("n", self.n)?,
                int("k", self.k)?,
                (&alpha as *const f32).cast(),
                self.a.0 as *const _,
                self.ty,
                int("ld of a", self.a.2)?,
                self.a.3 as i64,
                self.b.0 as *const _,
                self.ty,
                int("ld of b", self.b.2)?,
                self.b.3 as i64,
                (&self.beta as *const f32).cast(),
                self.c.0 as *mut _,
                self.ty,
                int("ld of c", self.c.1)?,
                self.c.2 as i64,
                int("batch", self.batch)?,
                self.compute,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| dev.error("matmul (cublasGemmStridedBatchedEx)", e))
    }
}

/// (…, m, k)·(…, k, n) [+ bias (n)], batch dimensions already broadcast.
pub(crate) fn matmul(
    a: &CudaStorage,
    al: &Layout,
    b: &CudaStorage,
    bl: &Layout,
    bias: Option<(&CudaStorage, &Layout)>,
) -> Result<Counted<CudaStorage>> {
    let dev = a.cuda_device();
    let dtype = a.dtype();
    let ty = data_type(dtype)?;
    let (ad, bd) = (al.dims(), bl.dims());
    let r = ad.len();
    let (m, k, n) = (ad[r - 2], ad[r - 1], bd[r - 1]);
    let batch: usize = ad[..r - 2].iter().product();
    let mut out = CudaStorage::alloc(dev, dtype, batch * m * n)?;
    let work = cost::matmul(
        batch,
        m,
        n,
        k,
        al.distinct_elems(),
        bl.distinct_elems(),
        bias.is_some(),
        dtype,
    );
    if out.is_empty() {
        return Ok(Counted::launch(out, work));
    }
    let y = out.ptr_mut(0);
    launched(dev, out, work, || {
        // A bias is broadcast into the output first and added by the product (beta = 1).
        let beta: f32 = match bias {
            Some((bs, bias_l)) => {
                let rows = Layout::from_parts(
                    vec![batch * m, n].into(),
                    [0, bias_l.strides()[bias_l.dims().len() - 1]],
                    bias_l.offset(),
                );
                let view = View4::of(&rows).expect("a 2-D view");
                launch!(dev, "copy.cu", format!("copy_strided_{}", suffix("matmul", dtype)?),
                        grid_stride(dev, batch * m * n); bs.ptr(bias_l.offset()), y, view, 0u64)?;
                1.0
            }
            None => 0.0,
        };
        let (pa, pb) = (operand(a, al, batch)?, operand(b, bl, batch)?);
        let compute = if dtype == DType::F32 && dev.tf32() {
            cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
        } else {
            cublasComputeType_t::CUBLAS_COMPUTE_32F
        };
        // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: cuBLAS's "A" is our B.
        let call = RawGemm {
            ty,
            compute,
            m: n,
            n: m,
            k,
            a: (pb.data.ptr, pb.transposed, pb.ld, pb.batch_stride),
            b: (pa.data.ptr, pa.transposed, pa.ld, pa.batch_stride),
            c: (y, n, m * n),
            batch,
            beta,
        };
        // SAFETY: the addresses are live device buffers holding the operands' strided
        // extents and the (batch, m, n) output. Gathered operands are freed in stream
        // order, after the product has read them.
        unsafe { call.run(dev) }
    })
}

/// A 1×1, stride-1, unpadded, ungrouped convolution as one batched cuBLAS product per image
/// (y[n] (c_out, h·w) = W (c_out, c_in) · x[n] (c_in, h·w)), bias broadcast into the output
/// first and the clamp applied after; counted at launch (`cost::conv2d` plus the clamp's
/// comparisons), as any cuBLAS call is. x and w must be contiguous.
pub(crate) fn conv1x1(
    x: (u64, [usize; 4]),
    w: u64,
    c_out: usize,
    bias: Option<(&CudaStorage, &Layout)>,
    activation: tally_core::backend::ConvActivation,
    (y, dtype, dev): (u64, DType, &crate::CudaDevice),
) -> Result<()> {
    use tally_core::backend::ConvActivation;
    let (ptr, [n, c_in, h, wd]) = x;
    let hw = h * wd;
    let total = n * c_out * hw;
    let beta = match bias {
        Some((bs, bl)) => {
            let step = bl.strides()[bl.dims().len() - 1];
            let rows = Layout::from_parts(vec![n, c_out, hw].into(), [0, step, 0], bl.offset());
            let view = View4::of(&rows).expect("a 3-D view");
            launch!(dev, "copy.cu", format!("copy_strided_{}", suffix("conv2d", dtype)?),
                    grid_stride(dev, total); bs.ptr(bl.offset()), y, view, 0u64)?;
            1.0
        }
        None => 0.0,
    };
    let call = RawGemm {
        ty: data_type(dtype)?,
        compute: if dtype == DType::F32 && dev.tf32() {
            cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
        } else {
            cublasComputeType_t::CUBLAS_COMPUTE_32F
        },
        m: hw,
        n: c_out,
        k: c_in,
        a: (ptr, false, hw, c_in * hw),
        b: (w, false, c_in, 0),
        c: (y, hw, c_out * hw),
        batch: n,
        beta,
    };
    // SAFETY: x holds n·c_in·h·w elements, w c_out·c_in, the output n·c_out·h·w.
    unsafe { call.run(dev) }?;
    let clamp = match activation {
        ConvActivation::None => None,
        ConvActivation::Relu => Some("relu"),
        ConvActivation::Relu6 => Some("relu6"),
    };
    if let Some(stem) = clamp {
        let name = format!("{stem}_{}", suffix("conv2d", dtype)?);
        launch!(dev, "unary.cu", name, grid_stride(dev, total); y, y, total as u64, 0u64)?;
    }
    Ok(())
}
