//! Tally's CPU backend. Every kernel tallies the FPO and bytes of the work units it
//! runs (a micro-tile, a row, a chunk) into a local [`tally_core::Work`] and returns it
//! once per call; `tally-tensor` records it. Kernels compute f16/bf16 in f32 registers
//! (bf16 GEMM multiplies bf16 pairs with `vdpbf16ps` where present, accumulating in f32).

mod attention;
mod backend;
mod binary;
pub mod buffers;
mod conv;
mod conv_depthwise;
mod copy;
mod embedding;
pub mod gemm;
pub mod heap;
mod linear;
mod norm;
mod pool;
mod reduce;
mod rope;
mod softmax;
mod storage;
mod unary;
mod util;
mod vmath;

pub use storage::{CpuElem, CpuStorage};
