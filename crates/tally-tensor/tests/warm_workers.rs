//! `on_pool` keeps the pool's other workers awake for the pass and lets them go at its
//! end, panicking or not. Its own test binary: the count of warm workers is process-wide.

use std::time::{Duration, Instant};

use tally_tensor::{on_pool, warm_workers};

/// The tests here read the process-wide count, so they take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs one pass that keeps handing out small split tasks (each one resets a warm
/// worker's idle clock) for at most `limit`, and returns the most workers it saw warm.
fn most_warm_in_a_pass(want: usize, limit: Duration) -> usize {
    on_pool(|| {
        let start = Instant::now();
        let mut most = 0;
        while most < want && start.elapsed() < limit {
            let spin = |micros: u64| {
                let until = Instant::now() + Duration::from_micros(micros);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            };
            rayon::join(|| spin(20), || spin(20));
            most = most.max(warm_workers());
        }
        most
    })
}

#[test]
fn the_other_workers_stay_warm_through_a_pass_and_are_released_after_it() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let threads = rayon::current_num_threads();
    if threads < 2 {
        eprintln!("skipping: the global pool has one thread, so there is no worker to keep warm");
        return;
    }
    // A worker that finds no work for a millisecond leaves its loop, so a pass whose own
    // thread is descheduled for that long as it starts can miss it: a few passes.
    let seen: Vec<usize> = (0..3)
        .map(|_| most_warm_in_a_pass(threads - 1, Duration::from_secs(2)))
        .collect();
    assert!(
        seen.contains(&(threads - 1)),
        "most warm workers seen per pass: {seen:?}, want {}",
        threads - 1
    );
    assert_eq!(warm_workers(), 0, "warm workers once the passes returned");
}

#[test]
fn a_pass_that_panics_still_releases_its_workers() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let caught = std::panic::catch_unwind(|| on_pool(|| panic!("the pass failed")));
    assert!(caught.is_err(), "the pass's panic reaches its caller");
    assert_eq!(
        warm_workers(),
        0,
        "warm workers once the failed pass returned"
    );
    // The pool still runs passes afterwards.
    assert_eq!(on_pool(|| 7), 7);
}
