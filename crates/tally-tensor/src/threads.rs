//! The CPU thread count (a setting, applied once per process), and [`on_pool`], which runs
//! a whole forward pass on the pool's workers.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
/// While `f` runs, the pool's other workers stay awake, looking for its tasks (see
/// [`warm_workers`]), as OpenMP runtimes keep theirs spinning between parallel regions.
/// A rayon worker that finds no work sleeps within microseconds, and waking it took
/// 29 µs on average on a 2-core VM (from a split product's start to its second task's),
/// a fifth of a 128 × 384 × 384 product; kept awake, 1–2 µs. A worker that finds no work
/// for [`WARM_IDLE_MAX`] sleeps all the same.
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
    let done = AtomicBool::new(false);
    let done = &done;
    rayon::scope(move |s| {
        let owner = rayon::current_thread_index();
        // Spawned before `f` pushes any task, so an idle worker steals one of these
        // first (thieves take the oldest job).
        for _ in 1..rayon::current_num_threads() {
            s.spawn(move |_| keep_warm(done, owner, WARM_IDLE_MAX));
        }
        // Set when `f` returns or unwinds, so a panicking pass releases its workers at
        // once rather than after their idle limit.
        let _release = SetOnDrop(done);
        region.enter(f)
    })
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// This thread's membership of the warm loops: counted in [`WARM_NOW`] and marked in
/// [`WARMING`] while it lives, both undone when it drops (an unwinding task included).
struct Warming;

impl Warming {
    fn enter() -> Warming {
        WARMING.set(true);
        WARM_NOW.fetch_add(1, Ordering::Relaxed);
        Warming
    }
}

impl Drop for Warming {
    fn drop(&mut self) {
        WARM_NOW.fetch_sub(1, Ordering::Relaxed);
        WARMING.set(false);
    }
}

/// Longest a worker kept warm by [`on_pool`] looks for work without finding any before
/// it stops and lets itself sleep. Also what bounds a stall should a warm worker's loop
/// ever sit on top of a task its pass waits for.
pub const WARM_IDLE_MAX: Duration = Duration::from_millis(1);

/// How many workers are inside [`on_pool`]'s warm loop at this moment, across all passes
/// (for tests and diagnostics).
pub fn warm_workers() -> usize {
    WARM_NOW.load(Ordering::Relaxed)
}

static WARM_NOW: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread is inside [`keep_warm`] already.
    static WARMING: Cell<bool> = const { Cell::new(false) };
}

/// Keeps this worker running the pool's tasks (rayon's `yield_now`), pausing briefly when
/// there are none, until `done` or until it has found none for `idle_max`.
///
/// Returns at once where it would block its own pass: on the thread that runs the pass
/// (`owner`: it would wait there for `done`, which only the pass's end sets), and nested
/// inside another warm loop (a task that loop ran may belong to this pass).
fn keep_warm(done: &AtomicBool, owner: Option<usize>, idle_max: Duration) {
    if rayon::current_thread_index() == owner || WARMING.get() {
        return;
    }
    let _warming = Warming::enter();
    let mut idle_since: Option<Instant> = None;
    while !done.load(Ordering::Acquire) {
        if let Some(rayon::Yield::Executed) = rayon::yield_now() {
            idle_since = None;
            continue;
        }
        let now = Instant::now();
        if now.duration_since(*idle_since.get_or_insert(now)) > idle_max {
            break;
        }
        for _ in 0..16 {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough that a warm loop that should have returned at once is seen not to.
    const LONG: Duration = Duration::from_secs(10);

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a test pool")
    }

    /// How long `keep_warm` takes on a worker of a 2-thread pool whose pass never ends:
    /// as the pass's own thread (`owner`), inside another warm loop (`nested`), or as an
    /// idle worker (neither), with `idle_max` as its idle limit.
    fn warm_loop_time(owner: bool, nested: bool, idle_max: Duration) -> Duration {
        let done = AtomicBool::new(false);
        pool(2).install(|| {
            let owner = rayon::current_thread_index().filter(|_| owner);
            WARMING.set(nested);
            let start = Instant::now();
            keep_warm(&done, owner, idle_max);
            WARMING.set(false);
            start.elapsed()
        })
    }

    #[test]
    fn the_passs_own_thread_does_not_wait_for_its_end() {
        let took = warm_loop_time(true, false, LONG);
        assert!(took < LONG / 2, "the owner waited {took:?}");
    }

    #[test]
    fn a_warm_loop_inside_another_returns_at_once() {
        let took = warm_loop_time(false, true, LONG);
        assert!(took < LONG / 2, "the nested loop waited {took:?}");
    }

    #[test]
    fn an_idle_warm_loop_stops_after_its_idle_limit() {
        let idle = Duration::from_millis(20);
        let took = warm_loop_time(false, false, idle);
        assert!(
            took >= idle && took < LONG / 2,
            "took {took:?} for a {idle:?} limit"
        );
    }

    #[test]
    fn a_warm_loop_runs_the_tasks_it_finds_and_stops_when_done() {
        let done = AtomicBool::new(false);
        let (entered, returned) = (AtomicBool::new(false), AtomicBool::new(false));
        let ran_on = std::sync::Mutex::new(Vec::new());
        let mut returned_early = true;
        pool(2).install(|| {
            let owner = rayon::current_thread_index();
            rayon::scope(|s| {
                s.spawn(|_| {
                    entered.store(true, Ordering::Release);
                    keep_warm(&done, owner, LONG);
                    returned.store(true, Ordering::Release);
                });
                // Wait for the other worker to enter the loop, then hand it tasks.
                let start = Instant::now();
                while !entered.load(Ordering::Acquire) && start.elapsed() < LONG / 2 {
                    std::hint::spin_loop();
                }
                rayon::scope(|inner| {
                    for _ in 0..64 {
                        inner.spawn(|_| {
                            std::thread::sleep(Duration::from_micros(200));
                            ran_on.lock().unwrap().push(rayon::current_thread_index());
                        });
                    }
                });
                returned_early = returned.load(Ordering::Acquire);
                done.store(true, Ordering::Release);
            });
        });
        assert!(
            !returned_early,
            "the warm loop returned before its pass was done"
        );
        assert!(
            returned.into_inner(),
            "the warm loop did not stop when done"
        );
        let ran_on = ran_on.into_inner().unwrap();
        assert_eq!(ran_on.len(), 64);
        assert!(
            ran_on.iter().any(|&t| t != ran_on[0]),
            "every task ran on one thread: {ran_on:?}"
        );
    }
}
