//! Hardware ceilings: what this machine can do, measured on the spot ([`peak`],
//! [`bandwidth`], gathered in a [`HardwareProfile`]), and what described targets could
//! do by their datasheets ([`targets`]), for roofline estimates.

pub mod bandwidth;
pub mod peak;
pub mod profile;
pub mod roofline;
pub mod targets;

pub use profile::{Figure, HardwareProfile, Skipped, SCHEMA};
pub use roofline::{by_class, op_class, Ceilings, ClassRow, Disagreement, Floor, OpClass};
pub use targets::{roofline_time, Estimate, Target};

/// How hard calibration works: iterations, repeats and buffer sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct Effort {
    /// Iterations of the FMA chain loop per thread and repeat.
    pub peak_iters: u64,
    /// Repeats per measurement; the best is kept.
    pub repeats: usize,
    /// Bytes per bandwidth buffer (three buffers are allocated).
    pub buffer_bytes: usize,
    /// Thread counts to measure at.
    pub threads: Vec<usize>,
    /// A smoke run: figures are positive but not ceilings.
    pub quick: bool,
}

impl Effort {
    /// The real measurement: 50 M chain iterations (~0.1 s a run), best of 5, three
    /// 256 MiB buffers, 1 thread and all.
    pub fn full() -> Self {
        Effort {
            peak_iters: 50_000_000,
            repeats: 5,
            buffer_bytes: 256 << 20,
            threads: default_threads(),
            quick: false,
        }
    }

    /// A smoke run in well under a second: figures are positive but not ceilings.
    pub fn quick() -> Self {
        Effort {
            peak_iters: 200_000,
            repeats: 2,
            buffer_bytes: 4 << 20,
            threads: default_threads(),
            quick: true,
        }
    }
}

/// 1 and every available hardware thread (once if they are the same).
pub fn default_threads() -> Vec<usize> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if all == 1 {
        vec![1]
    } else {
        vec![1, all]
    }
}

/// Runs `f` on `threads` threads at once, `repeats` times, and returns the best rate
/// `work / seconds` where `work` is what one run of all threads did.
/// Binds the calling thread to the `t`-th CPU this process may run on (Linux; best effort:
/// elsewhere, or when the call fails, the thread stays unbound). Unbound measuring threads
/// migrate between cores, and on a 2-core VM the 2-thread FMA peak then reads 10–20% low.
fn pin_to_cpu(t: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: `set` is a plain bit mask owned by this frame; sched_getaffinity and
    // sched_setaffinity read and write exactly size_of::<cpu_set_t>() bytes of it, and
    // pid 0 names the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut set) != 0 {
            return;
        }
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if allowed.is_empty() {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(allowed[t % allowed.len()], &mut one);
        libc::sched_setaffinity(0, size, &one);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = t;
}

pub(crate) fn best_rate<F>(threads: usize, repeats: usize, work: f64, f: F) -> f64
where
    F: Fn(usize) -> f32 + Sync,
{
    let mut best = 0f64;
    for _ in 0..repeats.max(1) {
        let start = std::time::Instant::now();
        let sink: f32 = std::thread::scope(|s| {
            let f = &f;
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        pin_to_cpu(t);
                        f(t)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        best = best.max(work / secs);
    }
    best
}
