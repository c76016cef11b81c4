//! The one error type of Tally: every message names the op, file, tensor, shape or dtype at fault.

use std::path::PathBuf;

use crate::{DType, Device, Shape};

/// Result alias used throughout Tally.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two shapes that had to agree did not.
    #[error("{op}: shape mismatch, {lhs} vs {rhs}")]
    ShapeMismatch {
        /// The op that checked.
        op: &'static str,
        /// The first shape.
        lhs: Shape,
        /// The second shape.
        rhs: Shape,
    },
    /// A shape the op cannot take (wrong rank, zero where it must be positive, ...).
    #[error("{op}: invalid shape {shape}: {reason}")]
    InvalidShape {
        /// The op that checked.
        op: &'static str,
        /// The offending shape.
        shape: Shape,
        /// What was expected.
        reason: String,
    },
    /// A dimension index past the rank.
    #[error("{op}: dimension {dim} out of range for rank {rank}")]
    DimOutOfRange {
        /// The op that checked.
        op: &'static str,
        /// The requested dimension.
        dim: usize,
        /// The tensor's rank.
        rank: usize,
    },
    /// Operands of different dtypes.
    #[error("{op}: dtype mismatch, {lhs} vs {rhs}")]
    DTypeMismatch {
        /// The op that checked.
        op: &'static str,
        /// The first dtype.
        lhs: DType,
        /// The second dtype.
        rhs: DType,
    },
    /// A dtype the op does not accept.
    #[error("{op}: unsupported dtype {dtype}")]
    UnsupportedDType {
        /// The op that checked.
        op: &'static str,
        /// The dtype it was given.
        dtype: DType,
    },
    /// Operands on different devices.
    #[error("{op}: device mismatch, {lhs} vs {rhs}")]
    DeviceMismatch {
        /// The op that checked.
        op: &'static str,
        /// The first device.
        lhs: Device,
        /// The second device.
        rhs: Device,
    },
    /// A device that is not available in this build or on this machine.
    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        device: Device,
        /// Why it cannot be used.
        reason: String,
    },
    /// A GPU driver, compiler or library call failed while running an op.
    #[error("{device}: {op}: {message}")]
    Gpu {
        /// The device the op ran on.
        device: Device,
        /// The op, or the step (`alloc`, `copy to host`, a kernel's name).
        op: String,
        /// What the driver, NVRTC or cuBLAS said.
        message: String,
    },
    /// An argument outside the op's domain (an index out of range, a zero stride, ...).
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The op that checked.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The operating system refused a file operation.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint file is malformed: a truncated body, a header that lies, bad JSON.
    #[error("{path}: bad checkpoint{}: {reason}", tensor.as_ref().map(|t| format!(" (tensor `{t}`)")).unwrap_or_default())]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// The tensor at fault, when one is.
        tensor: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A tensor a layer needs is not in the checkpoint.
    #[error("{path}: tensor `{name}` not found{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingTensor {
        /// The checkpoint (or its index file).
        path: PathBuf,
        /// The full tensor name.
        name: String,
        /// A near name or other hint.
        hint: Option<String>,
    },
    /// A checkpoint tensor whose shape is not what the layer expects.
    #[error("{path}: tensor `{name}` has shape {found}, expected {expected}")]
    TensorShape {
        /// The checkpoint.
        path: PathBuf,
        /// The full tensor name.
        name: String,
        /// The shape the layer needs.
        expected: Shape,
        /// The shape in the file.
        found: Shape,
    },
    /// A checkpoint tensor whose dtype Tally cannot load.
    #[error("{path}: tensor `{name}` has dtype {dtype}, which Tally cannot load (f32, f16, bf16, i64, u32 are supported)")]
    TensorDType {
        /// The checkpoint.
        path: PathBuf,
        /// The full tensor name.
        name: String,
        /// The dtype as named in the file.
        dtype: String,
    },
    /// JSON (de)serialisation failed.
    #[error("{what}: {source}")]
    Json {
        /// What was being read or written.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::InvalidShape`].
    pub fn shape(op: &'static str, shape: &Shape, reason: impl Into<String>) -> Self {
        Error::InvalidShape {
            op,
            shape: shape.clone(),
            reason: reason.into(),
        }
    }
}
