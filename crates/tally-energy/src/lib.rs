//! Energy for Tally's reports, measured where the machine allows and never invented.
//!
//! [`rapl`] reads Linux powercap RAPL counters (Intel and AMD CPUs); [`meter`] reads
//! them around a region, repeats short regions until the counters can resolve them,
//! and says `not_measured` with a reason where no counter exists. A figure from a
//! stated power is available on request and labelled `modelled`.

pub mod apportion;
pub mod meter;
pub mod rapl;

pub use apportion::Apportioned;
pub use meter::{EnergyMeter, EnergyReading, Method, MIN_WINDOW};
pub use rapl::{delta_uj, Rapl, RaplError, Sample, SysfsReader, Zone, DEFAULT_ROOT};
