//! The CPU thread count (a setting, applied once per process), and [`on_pool`], which runs
//! a whole forward pass on the pool's workers.

use tally_core::meter::Region;
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

/// Runs `f` on one of the pool's worker threads (directly, when this thread already is
/// one), inside the regions and scope open here, and returns its result.
///
/// Every op that splits its work then does so from a worker: the other workers steal
/// their share, and the calling thread sleeps once for the whole of `f` instead of once
/// per op. Called from outside the pool, each op otherwise hands its tasks to the pool
/// and waits to be woken when they finish, so on two cores the caller and both workers
/// contend for them on every op (SmolLM2 decode steps, 5 alternating rounds on a 2-core
/// VM: median 20.1 ms called from outside, 16.8 ms on the pool).
///
/// With a pool of one thread there is nothing to share, and `f` runs here: handing it over
/// would only add a wake-up (and, under callgrind, the worker's idle spinning to what
/// `benches/counting_instructions.sh` counts).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() || rayon::current_num_threads() <= 1 {
        return f();
    }
    // Entered even when no region is open here: the worker may be waiting inside another
    // pass, and this pass's ops are not that pass's.
    let region = Region::here();
    rayon::scope(move |_| region.enter(f))
}
