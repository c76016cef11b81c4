//! f32 matmul: Tally against candle on the same operands and thread count.
//! Criterion's throughput here is FPO (2·m·n·k per product), labelled "elements";
//! divide by the time to read GFLOP/s. After the criterion group, a summary table prints
//! medians of interleaved calls (Tally, candle) beside the f32 FMA peak measured in the
//! same run, before and after them. `cargo bench -p tally-benches --bench matmul`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tally::{Device, Tensor};

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    g.sample_size(10);
    for &n in &[128usize, 256, 512, 1024] {
        let (a, b) = tally_benches::square_operands(n);
        let fpo = 2 * n * n * n;
        g.throughput(Throughput::Elements(fpo as u64));
        let (ta, tb) = (
            Tensor::from_slice(&a, [n, n], Device::Cpu).expect("tally a"),
            Tensor::from_slice(&b, [n, n], Device::Cpu).expect("tally b"),
        );
        g.bench_with_input(BenchmarkId::new("tally", n), &n, |bch, _| {
            bch.iter(|| ta.matmul(&tb).expect("tally matmul"))
        });
        let dev = candle_core::Device::Cpu;
        let (ca, cb) = (
            candle_core::Tensor::from_slice(&a, (n, n), &dev).expect("candle a"),
            candle_core::Tensor::from_slice(&b, (n, n), &dev).expect("candle b"),
        );
        g.bench_with_input(BenchmarkId::new("candle", n), &n, |bch, _| {
            bch.iter(|| ca.matmul(&cb).expect("candle matmul"))
        });
    }
    g.finish();
    summary();
}

/// Square sizes of the summary table.
const SUMMARY_SIZES: [usize; 4] = [256, 512, 1024, 2048];

/// The f32 FMA peak on this run's thread count (best of 5 register-resident runs).
fn peak() -> f64 {
    let effort = tally::hw::Effort::full();
    tally::hw::peak::fma_peak(tally_cpu::gemm::detect(), tally::num_threads(), &effort).value
}

/// Medians of interleaved Tally and candle products, as GFLOP/s and % of the peak
/// measured just before and just after (the lower of the two peaks is the ceiling used,
/// so a quiet moment during one peak run cannot flatter the percentage downwards).
fn summary() {
    let before = peak();
    let mut rows = Vec::new();
    for n in SUMMARY_SIZES {
        let (a, b) = tally_benches::square_operands(n);
        let (ta, tb) = (
            Tensor::from_slice(&a, [n, n], Device::Cpu).expect("tally a"),
            Tensor::from_slice(&b, [n, n], Device::Cpu).expect("tally b"),
        );
        let dev = candle_core::Device::Cpu;
        let (ca, cb) = (
            candle_core::Tensor::from_slice(&a, (n, n), &dev).expect("candle a"),
            candle_core::Tensor::from_slice(&b, (n, n), &dev).expect("candle b"),
        );
        let reps = (4_000_000_000 / (2 * n * n * n)).clamp(10, 300);
        let (mut tally, mut candle) = (Vec::new(), Vec::new());
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            f();
            t.elapsed()
        };
        for _ in 0..reps {
            tally.push(time(&|| drop(ta.matmul(&tb).expect("tally matmul"))));
            candle.push(time(&|| drop(ca.matmul(&cb).expect("candle matmul"))));
        }
        let gflops = |t: &mut Vec<Duration>| {
            t.sort();
            2.0 * (n * n * n) as f64 / t[t.len() / 2].as_secs_f64() / 1e9
        };
        rows.push((n, gflops(&mut tally), gflops(&mut candle)));
    }
    let after = peak();
    let ceiling = before.min(after);
    println!(
        "\nmatmul summary ({} threads, kernel {}): medians of interleaved calls; f32 FMA peak {before:.0} GFLOP/s before, {after:.0} after",
        tally::num_threads(),
        tally_cpu::gemm::detect().name()
    );
    println!("| n | Tally GFLOP/s | candle GFLOP/s | Tally / candle | Tally % of peak |");
    println!("|---|---|---|---|---|");
    for (n, t, c) in rows {
        println!(
            "| {n} | {t:.0} | {c:.0} | {:.2}× | {:.0}% |",
            t / c,
            100.0 * t / ceiling
        );
    }
}

criterion_group!(benches, matmul);
criterion_main!(benches);
