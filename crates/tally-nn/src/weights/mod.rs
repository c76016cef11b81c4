//! Checkpoint weights: a safetensors-backed [`WeightStore`] (single file, sharded index or
//! folder, memory-mapped) and the prefixed [`WeightView`] that layers load from.
//!
//! Every malformed input is a typed [`tally_core::Error`] naming the file and, where there
//! is one, the tensor: a missing file is `Io`; a truncated file, a lying header length,
//! bad JSON, or offsets out of bounds, overlapping or disagreeing with shape × dtype are
//! `BadCheckpoint`; an absent name is `MissingTensor` (with a near-name hint); a wrong
//! shape is `TensorShape`; a dtype Tally cannot hold (F64, I8, BOOL, ...) is `TensorDType`.

mod convert;
mod file;
mod hint;
mod index;
mod seeded;
mod store;
mod view;

pub use index::INDEX_NAME;
pub use store::{TensorInfo, WeightStore};
pub use view::WeightView;
