//! Shared helpers for the integration tests: seeded data and tensor builders
//! ([`data`]), per-dtype tolerances ([`Tolerance`]), and the one check every op test
//! makes on its ledger record ([`counted`](mod@counted)). The naive f64 references live beside the
//! tests that use them, in `tests/*.rs`, written from the math and never from Tally.

pub mod counted;
pub mod data;
pub mod emulated_gpu;
pub mod scalar;
pub mod tolerance;

pub use counted::{counted, measure_one};
pub use data::{input, make, ravel, unravel, Rng};
pub use scalar::{ticks, Tick};
pub use tolerance::Tolerance;

/// The property-test settings every suite uses: 16 cases (enough to vary shapes, few
/// enough to run in seconds), and no regression files: a failure prints its seed, and
/// every case is reproducible from it.
pub fn config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: 16,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
