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
pub(crate) fn best_rate<F>(threads: usize, repeats: usize, work: f64, f: F) -> f64
where
    F: Fn(usize) -> f32 + Sync,
{
    let mut best = 0f64;
    for _ in 0..repeats.max(1) {
        let start = std::time::Instant::now();
        let sink: f32 = std::thread::scope(|s| {
            let f = &f;
            let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || f(t))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        best = best.max(work / secs);
    }
    best
}
