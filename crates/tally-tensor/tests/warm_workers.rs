//! `on_pool` keeps the pool's other workers awake for the whole pass and lets them go at
//! its end. Its own test binary: the count of warm workers is process-wide.

use std::time::{Duration, Instant};

use rayon::prelude::*;
use tally_tensor::{on_pool, warm_workers, WARM_IDLE_MAX};

#[test]
fn the_other_workers_stay_warm_through_a_pass_and_are_released_after_it() {
    let threads = rayon::current_num_threads();
    if threads < 2 {
        eprintln!("skipping: the global pool has one thread, so there is no worker to keep warm");
        return;
    }
    let seen = on_pool(|| {
        // The warm loops are spawned as the pass starts; give the workers time to take them.
        let start = Instant::now();
        while warm_workers() < threads - 1 && start.elapsed() < Duration::from_secs(5) {
            std::hint::spin_loop();
        }
        let at_start = warm_workers();
        // A serial stretch of a tenth of the idle limit leaves them warm, and a split
        // after it still runs on every thread.
        let until = Instant::now() + WARM_IDLE_MAX / 10;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        let after_serial = warm_workers();
        let sum: u64 = (0..1_000_000u64).into_par_iter().sum();
        (at_start, after_serial, sum)
    });
    assert_eq!(seen.0, threads - 1, "warm workers as the pass ran");
    assert_eq!(
        seen.1,
        threads - 1,
        "warm workers after a short serial stretch"
    );
    assert_eq!(seen.2, 499_999_500_000);
    assert_eq!(warm_workers(), 0, "warm workers once the pass returned");
}
