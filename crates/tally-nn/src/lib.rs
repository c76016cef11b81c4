//! Tally's layers over a memory-mapped safetensors weight store: [`WeightStore`] and
//! [`WeightView`] load checkpoints with typed errors; [`Linear`], [`LayerNorm`],
//! [`RmsNorm`], [`Embedding`], [`Conv2d`] and [`Activation`] compute with `Tensor` ops
//! only, so every kernel they run is counted by the meter.

#![deny(missing_docs)]

pub mod activation;
pub mod conv;
pub mod embedding;
pub mod linear;
pub mod norm;
pub mod weights;

pub use activation::Activation;
pub use conv::Conv2d;
pub use embedding::Embedding;
pub use linear::Linear;
pub use norm::{LayerNorm, RmsNorm};
pub use tally_core::backend::Conv2dParams;
pub use weights::{TensorInfo, WeightStore, WeightView, INDEX_NAME};
