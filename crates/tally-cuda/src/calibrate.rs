//! A GPU's measured ceilings: the rate of large cuBLAS products per dtype and of a
//! device-to-device copy, each timed with CUDA events around repeated calls on the device's
//! stream (after warm-up calls), for the roofline the reconciliation sets kernels against.

use std::sync::Arc;

use cudarc::cublas::sys::cublasComputeType_t;
use cudarc::driver::sys::CUevent_flags;
use tally_core::{DType, Result};

use crate::gemm::{data_type, RawGemm};
use crate::{CudaDevice, CudaStorage};

/// One measured ceiling.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuCeiling {
    /// `peak` (compute) or `bandwidth` (memory).
    pub quantity: &'static str,
    /// What ran: `cublas_gemm_bf16`, `cublas_gemm_tf32`, `d2d_copy`, …
    pub kernel: String,
    /// The rate, in `unit`.
    pub value: f64,
    /// `GFLOP/s` or `GB/s` (10⁹).
    pub unit: &'static str,
    /// How it was measured.
    pub method: String,
}

/// How long to measure: problem sizes and repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuEffort {
    /// Square product side for bf16/f16 (f32 and TF32 use half of it).
    pub gemm_n: usize,
    /// Bytes of the copied buffer.
    pub copy_bytes: usize,
    /// Timed calls after the warm-up calls.
    pub repeats: usize,
}

impl GpuEffort {
    /// Sizes that reach the ceilings of an H100-class GPU (8192³ products, a 1 GiB copy).
    pub fn full() -> GpuEffort {
        GpuEffort {
            gemm_n: 8192,
            copy_bytes: 1 << 30,
            repeats: 20,
        }
    }

    /// A smoke run: small sizes, not ceilings.
    pub fn quick() -> GpuEffort {
        GpuEffort {
            gemm_n: 1024,
            copy_bytes: 64 << 20,
            repeats: 3,
        }
    }
}

/// Seconds taken by `repeats` calls of `f`, after two untimed ones, between CUDA events.
fn timed(dev: &CudaDevice, repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    f()?;
    let ctx = dev.context();
    let ev = |what| {
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| dev.error(what, e))
    };
    let (start, end) = (ev("event")?, ev("event")?);
    start
        .record(dev.stream())
        .map_err(|e| dev.error("record", e))?;
    for _ in 0..repeats {
        f()?;
    }
    end.record(dev.stream())
        .map_err(|e| dev.error("record", e))?;
    let ms = start
        .elapsed_ms(&end)
        .map_err(|e| dev.error("elapsed", e))?;
    Ok(f64::from(ms) * 1e-3)
}

/// A buffer of `n` elements of `dtype` filled with values in ±1 (uploaded from the host:
/// products of zeros run faster than products of data).
fn filled(dev: &Arc<CudaDevice>, dtype: DType, n: usize) -> Result<CudaStorage> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let vals: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let host = match dtype {
        DType::BF16 => {
            tally_cpu::CpuStorage::BF16(vals.iter().map(|&v| half::bf16::from_f32(v)).collect())
        }
        DType::F16 => {
            tally_cpu::CpuStorage::F16(vals.iter().map(|&v| half::f16::from_f32(v)).collect())
        }
        _ => tally_cpu::CpuStorage::F32(vals),
    };
    CudaStorage::from_host(dev, &host)
}

/// Measures `dev`'s product ceilings (bf16, f16, f32, TF32) and copy bandwidth.
pub fn calibrate(dev: &Arc<CudaDevice>, effort: GpuEffort) -> Result<Vec<GpuCeiling>> {
    let mut out = Vec::new();
    let cases = [
        (
            "bf16",
            DType::BF16,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            effort.gemm_n,
        ),
        (
            "f16",
            DType::F16,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            effort.gemm_n,
        ),
        (
            "f32",
            DType::F32,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            effort.gemm_n / 2,
        ),
        (
            "tf32",
            DType::F32,
            cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
            effort.gemm_n / 2,
        ),
    ];
    for (name, dtype, compute, n) in cases {
        let a = filled(dev, dtype, n * n)?;
        let b = filled(dev, dtype, n * n)?;
        let mut c = CudaStorage::alloc(dev, dtype, n * n)?;
        let call = RawGemm {
            ty: data_type(dtype)?,
            compute,
            m: n,
            n,
            k: n,
            a: (a.ptr(0), false, n, 0),
            b: (b.ptr(0), false, n, 0),
            c: (c.ptr_mut(0), n, 0),
            batch: 1,
            beta: 0.0,
        };
        // SAFETY: a, b and c each hold n·n elements of `dtype`.
        let s = timed(dev, effort.repeats, || unsafe { call.run(dev) })?;
        out.push(GpuCeiling {
            quantity: "peak",
            kernel: format!("cublas_gemm_{name}"),
            value: 2.0 * (n as f64).powi(3) * effort.repeats as f64 / s / 1e9,
            unit: "GFLOP/s",
            method: format!(
                "{n}×{n}×{n} cublasGemmEx on random data, f32 accumulation, {} calls between CUDA events after 2 warm-up calls",
                effort.repeats
            ),
        });
    }
    let n = effort.copy_bytes / 4;
    let src = filled(dev, DType::F32, n)?;
    let mut dst = CudaStorage::alloc(dev, DType::F32, n)?;
    let s = timed(dev, effort.repeats, || dst.copy_from(&src))?;
    out.push(GpuCeiling {
        quantity: "bandwidth",
        kernel: "d2d_copy".into(),
        value: 2.0 * effort.copy_bytes as f64 * effort.repeats as f64 / s / 1e9,
        unit: "GB/s",
        method: format!(
            "cuMemcpyDtoD of {} MiB, bytes read + written, {} copies between CUDA events",
            effort.copy_bytes >> 20,
            effort.repeats
        ),
    });
    Ok(out)
}
