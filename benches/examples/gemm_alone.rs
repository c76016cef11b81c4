//! f32 GEMM alone, warm, against the FMA peak measured beside it: each repeat runs a short
//! peak measurement (register-resident FMA chains, as `tally calibrate`, on the same thread
//! count) and then one product on the same operands into the same output, so the two see
//! the same machine state; the figure is the median over repeats of GEMM GFLOP/s over that
//! repeat's peak. On a shared host whose speed drifts by tens of percent this ratio holds
//! still where either rate alone does not. On 1 thread and on all.
//! `cargo run --release -p tally-benches --example gemm_alone [REPS]`.

use std::time::Instant;

use tally_cpu::gemm::{detect, gemm, MatRef};

/// Chain iterations of one short peak measurement (about 10 ms at 200 GFLOP/s per core).
const PEAK_ITERS: u64 = 5_000_000;

fn main() {
    let reps: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 40,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: gemm_alone [REPS]   (REPS: a whole number of repeats, default 40)");
            std::process::exit(2);
        }
    };
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1];
    if all > 1 {
        threads.push(all);
    }
    let short = tally::hw::Effort {
        peak_iters: PEAK_ITERS,
        repeats: 1,
        ..tally::hw::Effort::full()
    };
    println!("kernel {}, {reps} repeats", detect().name());
    println!(
        "| threads | n | median % of peak | [p10–p90] | median GFLOP/s | median peak GFLOP/s |"
    );
    println!("|---|---|---|---|---|---|");
    for t in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("pool");
        pool.install(|| {
            for n in [512usize, 1024, 2048] {
                let (a, b) = tally_benches::square_operands(n);
                let mut c = vec![0f32; n * n];
                let fpo = 2.0 * (n * n * n) as f64;
                let mut run = || {
                    let start = Instant::now();
                    gemm(
                        n,
                        n,
                        n,
                        MatRef::rows(&a, 0, n),
                        MatRef::rows(&b, 0, n),
                        None,
                        &mut c,
                    );
                    fpo / start.elapsed().as_secs_f64() / 1e9
                };
                run();
                let mut rows: Vec<(f64, f64, f64)> = (0..reps.max(3))
                    .map(|_| {
                        let peak = tally::hw::peak::fma_peak(detect(), t, &short).value;
                        let rate = run();
                        (rate / peak, rate, peak)
                    })
                    .collect();
                let pick = |rows: &mut Vec<(f64, f64, f64)>, key: fn(&(f64, f64, f64)) -> f64| {
                    rows.sort_by(|x, y| key(x).total_cmp(&key(y)));
                    let at = |q: f64| key(&rows[((rows.len() - 1) as f64 * q).round() as usize]);
                    (at(0.1), at(0.5), at(0.9))
                };
                let (lo, ratio, hi) = pick(&mut rows, |r| r.0);
                let (_, rate, _) = pick(&mut rows, |r| r.1);
                let (_, peak, _) = pick(&mut rows, |r| r.2);
                println!(
                    "| {t} | {n} | {:.1}% | [{:.1}–{:.1}%] | {rate:.0} | {peak:.0} |",
                    100.0 * ratio,
                    100.0 * lo,
                    100.0 * hi
                );
            }
        });
    }
}
