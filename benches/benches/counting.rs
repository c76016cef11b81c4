//! What counting costs: the shipped digits MLP's forward pass outside any region (kernels
//! still tally their work, nothing is recorded) against inside `measure` (every kernel
//! call timed and recorded with its shapes). Kernels always count; this measures the rest.
//! `cargo bench -p tally-benches --bench counting`.

use criterion::{criterion_group, criterion_main, Criterion};
use tally::models::digits::{Digits, DigitsMlp};
use tally::{measure, DType, Device};

fn counting(c: &mut Criterion) {
    let dir = tally::models::models_dir().join("digits");
    let model = DigitsMlp::load(&dir.join("mlp.safetensors"), DType::F32).expect("shipped model");
    let data = Digits::load(&dir.join("digits.csv.gz")).expect("shipped data").held_out();
    let x = data.tensor(Device::Cpu).expect("pixels");
    let mut g = c.benchmark_group("digits_mlp_forward_360");
    g.bench_function("unrecorded", |b| b.iter(|| model.forward(&x).expect("forward")));
    g.bench_function("recorded", |b| {
        b.iter(|| {
            let (out, ledger) = measure(|| model.forward(&x));
            (out.expect("forward"), ledger)
        })
    });
    g.finish();
}

criterion_group!(benches, counting);
criterion_main!(benches);
