//! Where a tensor lives.

use serde::{Deserialize, Serialize};

/// A compute device. `Cuda(n)` is served by the CUDA backend when it is compiled in;
/// asking for it otherwise is an [`crate::Error::DeviceUnavailable`], never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The host CPU, threaded with rayon.
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.pad("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}
