//! What recording costs: the shipped digits MLP's forward pass outside any region (kernels
//! still tally their work; nothing is recorded) against inside `measure` (every kernel call
//! timed and recorded with its shapes). The two are interleaved, call by call, so machine
//! noise hits both alike; the medians and their ratio are printed.
//! `cargo bench -p tally-benches --bench counting`.

use std::time::{Duration, Instant};

use tally::models::digits::{Digits, DigitsMlp};
use tally::{measure, DType, Device};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tally::models::models_dir().join("digits");
    let model = DigitsMlp::load(&dir.join("mlp.safetensors"), DType::F32).expect("shipped model");
    let data = Digits::load(&dir.join("digits.csv.gz"))
        .expect("shipped data")
        .held_out();
    for batch in [1usize, 32, 360] {
        let x = data.take(batch).tensor(Device::Cpu).expect("pixels");
        let iters = if batch == 360 { 3000 } else { 20000 };
        let (mut plain, mut recorded) = (Vec::with_capacity(iters), Vec::with_capacity(iters));
        for i in 0..iters + iters / 10 {
            let t = Instant::now();
            std::hint::black_box(model.forward(&x).expect("forward"));
            let a = t.elapsed();
            let t = Instant::now();
            let (out, ledger) = measure(|| model.forward(&x));
            std::hint::black_box((out.expect("forward"), ledger));
            let b = t.elapsed();
            if i >= iters / 10 {
                plain.push(a);
                recorded.push(b);
            }
        }
        let (p, r) = (median(&mut plain), median(&mut recorded));
        println!(
            "digits_mlp batch {batch:>3}: unrecorded {:>9.2?}  recorded {:>9.2?}  overhead {:+.2}% (medians of {iters}, interleaved)",
            p,
            r,
            100.0 * (r.as_secs_f64() / p.as_secs_f64() - 1.0)
        );
    }
}
