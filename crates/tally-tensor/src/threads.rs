//! The CPU thread count: a setting, applied once per process.

use tally_core::{Error, Result};

/// Sets the number of CPU worker threads. Must be called before the first op runs
/// (rayon's global pool is built once); later calls return an error.
pub fn set_num_threads(n: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| Error::invalid("set_num_threads", format!("cannot set {n} threads: {e}")))
}

/// The number of CPU worker threads ops run on.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}
