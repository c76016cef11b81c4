//! Tally's CUDA backend: the `kernels/*.cu` sources, which count the work they execute
//! into a six-column device counter buffer (`kernels/README.md`), their NVRTC compile step
//! ([`compile_ptx`]), and [`CudaStorage`], which implements the backend interface by
//! launching them (and cuBLAS for matrix products). Compiled PTX is kept on disk
//! ([`cached_ptx`]), so NVRTC runs once per kernel file and machine.
//!
//! The driver, NVRTC and cuBLAS are loaded at run time (cudarc's `dynamic-loading`), so this
//! crate builds and its tests run on machines without CUDA: [`nvrtc_available`] says whether
//! kernels can be compiled here, and [`CudaDevice::get`] returns
//! `Error::DeviceUnavailable` naming what is missing.

mod backend;
pub mod calibrate;
mod compile;
mod counters;
mod device;
mod gemm;
mod launch;
mod operands;
mod ptx_cache;
mod storage;

pub use compile::{compile_ptx, nvrtc_available, with_headers, Arch, CompileError};
pub use device::{CudaDevice, ProfilerRange};
pub use ptx_cache::{cached_ptx, ptx_cache_dir, ptx_cache_file, PtxOrigin};
pub use storage::CudaStorage;

/// Every kernel source in `kernels/`: (file name, CUDA C source). A test holds this list
/// equal to the `.cu` files in the folder.
pub const KERNELS: &[(&str, &str)] = &[
    ("unary.cu", include_str!("../../../kernels/unary.cu")),
    ("binary.cu", include_str!("../../../kernels/binary.cu")),
    ("softmax.cu", include_str!("../../../kernels/softmax.cu")),
    ("norm.cu", include_str!("../../../kernels/norm.cu")),
    ("rope.cu", include_str!("../../../kernels/rope.cu")),
    (
        "embedding.cu",
        include_str!("../../../kernels/embedding.cu"),
    ),
    ("copy.cu", include_str!("../../../kernels/copy.cu")),
    ("reduce.cu", include_str!("../../../kernels/reduce.cu")),
    ("conv.cu", include_str!("../../../kernels/conv.cu")),
    ("pool.cu", include_str!("../../../kernels/pool.cu")),
    (
        "attention.cu",
        include_str!("../../../kernels/attention.cu"),
    ),
];

/// The shared headers kernels include as `#include "name.cuh"`: (file name, source).
/// NVRTC has no include path here, so [`compile_ptx`] pastes them in place.
pub const HEADERS: &[(&str, &str)] = &[
    (
        "tally_count.cuh",
        include_str!("../../../kernels/tally_count.cuh"),
    ),
    (
        "tally_dtype.cuh",
        include_str!("../../../kernels/tally_dtype.cuh"),
    ),
    (
        "tally_reduce.cuh",
        include_str!("../../../kernels/tally_reduce.cuh"),
    ),
];

/// The counter columns every kernel adds into, in buffer order (`kernels/tally_count.cuh`).
pub const COUNTERS: [&str; 6] = [
    "add",
    "mul",
    "fma",
    "special",
    "bytes_read",
    "bytes_written",
];
