//! Energy for Tally's reports, measured where the machine allows and never invented.
//!
//! [`rapl`] reads Linux powercap RAPL counters (Intel and AMD CPUs), [`nvml`] an NVIDIA
//! GPU's total energy counter; [`meter`] reads
//! them around a region, repeats short regions until the counters can resolve them,
//! and says `not_measured` with a reason where no counter exists. A figure from a
//! stated power is available on request and labelled `modelled`.

pub mod apportion;
pub mod meter;
pub mod nvml;
pub mod rapl;

pub use apportion::Apportioned;
pub use meter::{EnergyMeter, EnergyReading, Method, MIN_WINDOW};
pub use nvml::GpuEnergy;
pub use rapl::{delta_uj, Rapl, RaplError, Sample, SysfsReader, Zone, DEFAULT_ROOT};
