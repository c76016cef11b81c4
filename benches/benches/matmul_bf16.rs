//! bf16 matmul: Tally bf16 against Tally f32 and candle bf16, on the same operands and
//! thread count in one run. Criterion's throughput is FPO (2·m·n·k), labelled "elements":
//! its "Gelem/s" is GFLOP/s. After the criterion groups a summary table prints medians of
//! interleaved calls and the Tally bf16 / f32 speed ratio.
//! `cargo bench -p tally-benches --bench matmul_bf16`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tally::{DType, Device, Tensor};

const SIZES: [usize; 3] = [256, 512, 1024];

/// The three products timed at one size: Tally f32, Tally bf16, candle bf16.
struct Case {
    f32: (Tensor, Tensor),
    bf16: (Tensor, Tensor),
    candle: (candle_core::Tensor, candle_core::Tensor),
}

impl Case {
    fn new(n: usize) -> Case {
        let (a, b) = tally_benches::square_operands(n);
        let t = |v: &[f32]| Tensor::from_slice(v, [n, n], Device::Cpu).expect("tally operand");
        let c = |v: &[f32]| {
            candle_core::Tensor::from_slice(v, (n, n), &candle_core::Device::Cpu)
                .and_then(|t| t.to_dtype(candle_core::DType::BF16))
                .expect("candle operand")
        };
        let (ta, tb) = (t(&a), t(&b));
        let bf = |x: &Tensor| x.to_dtype(DType::BF16).expect("tally bf16");
        Case {
            bf16: (bf(&ta), bf(&tb)),
            f32: (ta, tb),
            candle: (c(&a), c(&b)),
        }
    }
    fn tally_f32(&self) -> Tensor {
        self.f32.0.matmul(&self.f32.1).expect("tally f32 matmul")
    }
    fn tally_bf16(&self) -> Tensor {
        self.bf16.0.matmul(&self.bf16.1).expect("tally bf16 matmul")
    }
    fn candle_bf16(&self) -> candle_core::Tensor {
        self.candle
            .0
            .matmul(&self.candle.1)
            .expect("candle bf16 matmul")
    }
}

fn matmul_bf16(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_bf16");
    g.sample_size(10);
    for n in SIZES {
        let case = Case::new(n);
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_with_input(BenchmarkId::new("tally_f32", n), &n, |b, _| {
            b.iter(|| case.tally_f32())
        });
        g.bench_with_input(BenchmarkId::new("tally_bf16", n), &n, |b, _| {
            b.iter(|| case.tally_bf16())
        });
        g.bench_with_input(BenchmarkId::new("candle_bf16", n), &n, |b, _| {
            b.iter(|| case.candle_bf16())
        });
    }
    g.finish();
    summary();
}

/// Median of `reps` calls of each of the three products, interleaved call by call so that
/// clock and thermal drift hit all three alike.
fn summary() {
    println!(
        "\nmatmul_bf16 summary ({} threads, bf16 path {}): median of interleaved calls",
        tally::num_threads(),
        tally_cpu::gemm::detect_bf16().name()
    );
    println!(
        "| n | Tally f32 GFLOP/s | Tally bf16 GFLOP/s | candle bf16 GFLOP/s | Tally bf16 / f32 |"
    );
    println!("|---|---|---|---|---|");
    for n in SIZES {
        let case = Case::new(n);
        let reps = (2_000_000_000 / (2 * n * n * n)).clamp(10, 200);
        let mut times = [Vec::new(), Vec::new(), Vec::new()];
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            f();
            t.elapsed()
        };
        for _ in 0..reps {
            times[0].push(time(&|| drop(case.tally_f32())));
            times[1].push(time(&|| drop(case.tally_bf16())));
            times[2].push(time(&|| drop(case.candle_bf16())));
        }
        let gflops = |t: &mut Vec<Duration>| {
            t.sort();
            2.0 * (n * n * n) as f64 / t[t.len() / 2].as_secs_f64() / 1e9
        };
        let [f, b, cb] = times.each_mut().map(gflops);
        println!("| {n} | {f:.0} | {b:.0} | {cb:.0} | {:.2}× |", b / f);
    }
}

criterion_group!(benches, matmul_bf16);
criterion_main!(benches);
