//! Tally: an in-process inference runtime whose kernels count the floating-point
//! operations and bytes they execute, so that measured time and energy can be set
//! against the work done.
//!
//! ```
//! use tally::{measure, Device, Tensor};
//!
//! let a = Tensor::from_vec(vec![1f32; 6], [2, 3], Device::Cpu)?;
//! let b = Tensor::from_vec(vec![1f32; 12], [3, 4], Device::Cpu)?;
//! let (c, ledger) = measure(|| a.matmul(&b));
//! assert_eq!(c?.dims(), &[2, 4]);
//! assert_eq!(ledger.total().work.fpo(), 2 * 2 * 4 * 3); // 2·m·n·k
//!
//! // The same, with the error handled in one step:
//! let (c, ledger) = tally::try_measure(|| a.matmul(&b))?;
//! assert_eq!(ledger.records()[0].output, c.shape().clone());
//! # Ok::<(), tally::Error>(())
//! ```

pub use tally_core as core;
pub use tally_core::{
    measure, scope, try_measure, DType, Device, Error, Ledger, Region, Result, Shape, Work,
};
pub use tally_cpu as cpu;
pub use tally_hw as hw;
pub use tally_models as models;
pub use tally_nn as nn;
pub use tally_tensor::{num_threads, on_pool, set_num_threads, Tensor};
