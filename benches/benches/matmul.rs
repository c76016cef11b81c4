//! f32 matmul: Tally against candle on the same operands and thread count.
//! Criterion's throughput here is FPO (2·m·n·k per product), labelled "elements";
//! divide by the time to read GFLOP/s. `cargo bench -p tally-benches --bench matmul`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tally::{Device, Tensor};

fn operands(n: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..n * n)
        .map(|i| ((i * 31 % 97) as f32 - 48.0) / 97.0)
        .collect();
    let b = (0..n * n)
        .map(|i| ((i * 17 % 89) as f32 - 44.0) / 89.0)
        .collect();
    (a, b)
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    g.sample_size(10);
    for &n in &[128usize, 256, 512, 1024] {
        let (a, b) = operands(n);
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
}

criterion_group!(benches, matmul);
criterion_main!(benches);
