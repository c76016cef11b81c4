//! The user-facing [`Tensor`]: eager ops that validate their inputs, dispatch to the
//! backend that owns the storage, and record each kernel's [`tally_core::Work`] into the
//! meter. Views (narrow, transpose, permute, broadcast, reshape of contiguous data)
//! never copy and never run a kernel.

mod dispatch;
mod ops_elementwise;
mod ops_matmul;
mod ops_nn;
mod ops_shape;
mod packed;
mod storage;
mod tensor;
mod threads;

pub use packed::{packs, PackedWeight};
pub use storage::{live_bytes, peak_live_bytes, reset_peak_live_bytes, Storage};
pub use tensor::Tensor;
pub use threads::{num_threads, on_pool, set_num_threads, warm_workers, WARM_IDLE_MAX};
