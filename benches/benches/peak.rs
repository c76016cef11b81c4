//! The machine's f32 FMA ceiling, measured: independent register-resident FMA chains
//! (no memory traffic) on every thread, with the widest vectors the host has. The GEMM
//! bench's GFLOP/s are read against this. `cargo bench -p tally-benches --bench peak`.

use std::time::Instant;

/// Accumulator chains per thread: enough to cover FMA latency × issue width.
const CHAINS: usize = 12;
const LANES: usize = 16;

/// One body, stamped out per instruction set so each copy compiles with its features.
macro_rules! fma_chains {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        fn $name(iters: u64) -> f32 {
            let mut acc = [1.0f32; LANES * CHAINS];
            let (a, b) = (std::hint::black_box(0.999_999f32), std::hint::black_box(1e-7f32));
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = v.mul_add(a, b);
                }
            }
            acc.iter().sum()
        }
    };
}

fma_chains!(chains);
fma_chains!(
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    chains_avx512
);
fma_chains!(
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    chains_avx2
);

fn run(iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU reports AVX-512F (and FMA comes with it on every such CPU).
            return unsafe { chains_avx512(iters) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were detected just above.
            return unsafe { chains_avx2(iters) };
        }
    }
    chains(iters)
}

fn main() {
    let iters = 20_000_000u64;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for t in [1, threads] {
        let mut best = 0f64;
        for _ in 0..5 {
            let start = Instant::now();
            let sink: f32 = std::thread::scope(|s| {
                let handles: Vec<_> = (0..t).map(|_| s.spawn(|| run(iters))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
            });
            let secs = start.elapsed().as_secs_f64();
            std::hint::black_box(sink);
            let fpo = 2.0 * (iters as f64) * (CHAINS * LANES) as f64 * t as f64;
            best = best.max(fpo / secs / 1e9);
        }
        println!("f32 FMA peak, {t} thread(s): {best:.1} GFLOP/s (best of 5)");
    }
}
