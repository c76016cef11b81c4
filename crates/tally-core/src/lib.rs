//! Tally's core vocabulary: dtypes, shapes and strided layouts, devices, the op set,
//! the [`Work`] value every kernel returns, the analytic [`cost`] formulas, and the
//! [`meter`] that records work into ledgers, and the [`report`] and [`trace`] views of them.
//!
//! The core knows nothing about kernels: backends (`tally-cpu`, later `tally-cuda`)
//! implement [`backend::BackendStorage`], and `tally-tensor` dispatches to them.

pub mod backend;
pub mod cache;
pub mod cost;
pub mod device;
pub mod dtype;
pub mod error;
pub mod layout;
pub mod ledger;
pub mod meter;
pub mod op;
pub mod report;
pub mod shape;
pub mod trace;
pub mod work;

pub use cache::cache_dir;
pub use device::Device;
pub use dtype::{DType, FloatElem, WithDType};
pub use error::{Error, Result};
pub use layout::Layout;
pub use ledger::{Call, Ledger, OpSummary, Record};
pub use meter::{measure, scope, try_measure, Region};
pub use op::{BinaryOp, OpId, ReduceOp, UnaryOp};
pub use shape::Shape;
pub use work::{Counted, PendingWork, Source, Work};

/// Whether this build counts: true unless the `uncounted` cargo feature compiled the
/// counters out. That build exists only to measure what counting costs (the
/// `counting_overhead` bench script); its ledgers stay empty and its `Work` values are zero.
pub const COUNTING: bool = cfg!(not(feature = "uncounted"));
