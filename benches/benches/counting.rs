//! What recording costs: the shipped digits MLP's forward pass outside any region (kernels
//! still tally their work; nothing is recorded) against inside `measure` (every kernel call
//! timed and recorded with its shapes). The two are interleaved, call by call, so machine
//! noise hits both alike; the medians and their ratio are printed. Before that, the cost
//! of one recorded call alone: 1,000 ReLUs of a 16-element tensor, outside and inside a
//! region (and inside a scope), the difference per call in nanoseconds.
//! `cargo bench -p tally-benches --bench counting`.

use std::time::{Duration, Instant};

use tally::models::digits::{Digits, DigitsMlp};
use tally::{measure, scope, DType, Device, Tensor};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time of `rounds` runs of `f`.
fn median_of(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    median(&mut v)
}

/// Nanoseconds one recorded call adds: `CALLS` tiny ReLUs unrecorded, recorded, and
/// recorded under a fresh scope per call (as a model's layers open them), interleaved.
fn per_call() {
    const CALLS: usize = 1000;
    let x = Tensor::from_vec(vec![1f32; 16], [16], Device::Cpu).expect("tensor");
    let relus = || {
        for _ in 0..CALLS {
            std::hint::black_box(x.relu().expect("relu"));
        }
    };
    let scoped = || {
        for _ in 0..CALLS {
            scope("layer", || std::hint::black_box(x.relu().expect("relu")));
        }
    };
    let (mut plain, mut rec, mut sc) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..30 {
        plain.push(median_of(5, relus));
        rec.push(median_of(5, || drop(measure(relus))));
        sc.push(median_of(5, || drop(measure(scoped))));
    }
    let (p, r, s) = (median(&mut plain), median(&mut rec), median(&mut sc));
    let ns = |d: Duration| d.as_nanos() as f64 / CALLS as f64;
    println!(
        "one call (16-element relu): unrecorded {:.0} ns, recorded {:.0} ns (+{:.0} ns), recorded in a scope {:.0} ns (+{:.0} ns)",
        ns(p),
        ns(r),
        ns(r) - ns(p),
        ns(s),
        ns(s) - ns(p)
    );
}

fn main() {
    per_call();
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
