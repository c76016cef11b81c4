//! Special functions: Tally against candle on the same f32 operands and thread count.
//! gelu_erf, silu and exp over a (128, 1536) tensor (MiniLM's FFN activation at 1×128),
//! softmax over the last dimension of (12, 128, 128) (its attention probabilities).
//! Criterion's throughput is input **elements**, so its "Melem/s" is elements per second;
//! ns/element = 1000 / (Melem/s). `cargo bench -p tally-benches --bench unary`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tally::{Device, Tensor};

/// Deterministic values in [-4, 4): the range activations and attention scores live in.
fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 8192) as f32 - 4096.0) / 1024.0)
        .collect()
}

fn elementwise(c: &mut Criterion) {
    let (rows, cols) = (128usize, 1536usize);
    let data = values(rows * cols);
    let t = Tensor::from_slice(&data, [rows, cols], Device::Cpu).expect("tally x");
    let dev = candle_core::Device::Cpu;
    let ct = candle_core::Tensor::from_slice(&data, (rows, cols), &dev).expect("candle x");
    let mut g = c.benchmark_group("unary_f32_128x1536");
    g.throughput(Throughput::Elements((rows * cols) as u64));
    g.bench_function(BenchmarkId::new("tally", "gelu_erf"), |b| {
        b.iter(|| t.gelu_erf().expect("tally gelu_erf"))
    });
    g.bench_function(BenchmarkId::new("candle", "gelu_erf"), |b| {
        b.iter(|| ct.gelu_erf().expect("candle gelu_erf"))
    });
    g.bench_function(BenchmarkId::new("tally", "silu"), |b| {
        b.iter(|| t.silu().expect("tally silu"))
    });
    g.bench_function(BenchmarkId::new("candle", "silu"), |b| {
        b.iter(|| ct.silu().expect("candle silu"))
    });
    g.bench_function(BenchmarkId::new("tally", "exp"), |b| {
        b.iter(|| t.exp().expect("tally exp"))
    });
    g.bench_function(BenchmarkId::new("candle", "exp"), |b| {
        b.iter(|| ct.exp().expect("candle exp"))
    });
    g.finish();
}

fn softmax(c: &mut Criterion) {
    let shape = (12usize, 128usize, 128usize);
    let data = values(shape.0 * shape.1 * shape.2);
    let t = Tensor::from_slice(&data, [shape.0, shape.1, shape.2], Device::Cpu).expect("tally x");
    let dev = candle_core::Device::Cpu;
    let ct = candle_core::Tensor::from_slice(&data, shape, &dev).expect("candle x");
    let mut g = c.benchmark_group("softmax_f32_12x128x128");
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("tally", |b| {
        b.iter(|| t.softmax_last().expect("tally softmax"))
    });
    g.bench_function("candle", |b| {
        b.iter(|| candle_nn::ops::softmax_last_dim(&ct).expect("candle softmax"))
    });
    g.finish();
}

criterion_group!(benches, elementwise, softmax);
criterion_main!(benches);
