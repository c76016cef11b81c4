//! What recording costs: the shipped digits MLP's forward pass outside any region (kernels
//! still tally their work; nothing is recorded) against inside `measure` (every kernel call
//! timed and recorded with its shapes). The two are interleaved, call by call, so machine
//! noise hits both alike; the medians and their ratio are printed. Before that, the cost
//! of one recorded call alone: 1,000 ReLUs of a 16-element tensor, outside and inside a
//! region (and inside a scope), the difference per call in nanoseconds. After it, the
//! same race on real models where they are fetched (MiniLM 1×128 and SmolLM2 decode steps
//! after a 128-token prompt): the same binary, the same weights in the same memory, so
//! only the meter's recording differs between the two arms.
//! `cargo bench -p tally-benches --bench counting`.

use std::time::{Duration, Instant};

use tally::models::bert::{Bert, MINILM_DIR};
use tally::models::digits::{Digits, DigitsMlp};
use tally::models::llama::{Llama, SMOLLM2_DIR};
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

/// Runs `pass` unrecorded and recorded alternately (`pairs` of each after a tenth as
/// warm-up, which arm goes first alternating too; `between` runs untimed before each pair)
/// and prints both medians, the median of the per-pair ratios and the records in one
/// recorded pass.
fn race_recording(name: &str, pairs: usize, mut between: impl FnMut(), mut pass: impl FnMut()) {
    let mut timed = |record: bool| {
        let t = Instant::now();
        if record {
            let ((), ledger) = measure(&mut pass);
            let elapsed = t.elapsed();
            (elapsed, ledger.records().len())
        } else {
            pass();
            (t.elapsed(), 0)
        }
    };
    let (mut plain, mut recorded, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut records = 0;
    for i in 0..pairs + pairs / 10 {
        between();
        let (a, (b, n)) = if i % 2 == 0 {
            let a = timed(false).0;
            (a, timed(true))
        } else {
            let b = timed(true);
            (timed(false).0, b)
        };
        records = n;
        if i >= pairs / 10 {
            plain.push(a);
            recorded.push(b);
            ratios.push(b.as_secs_f64() / a.as_secs_f64());
        }
    }
    ratios.sort_by(f64::total_cmp);
    let (p, r) = (median(&mut plain), median(&mut recorded));
    println!(
        "{name}: unrecorded {p:>9.2?}  recorded {r:>9.2?}  median per-pair ratio {:.4} ({records} records per pass, {pairs} pairs, interleaved)",
        ratios[ratios.len() / 2]
    );
}

/// The models' race, for those whose checkpoints are fetched.
fn models() {
    let cache = tally::models::cache_dir();
    let minilm = cache.join(MINILM_DIR);
    if minilm.is_dir() {
        let model = Bert::load(&minilm, DType::F32).expect("MiniLM loads");
        let ids: Vec<u32> = (0..128u32)
            .map(|j| match j {
                0 => 101,
                127 => 102,
                j => 1000 + (j * 7919) % 28000,
            })
            .collect();
        let ids = Tensor::from_vec(ids, [1, 128], Device::Cpu).expect("ids");
        let mask = Tensor::from_vec(vec![1u32; 128], [1, 128], Device::Cpu).expect("mask");
        race_recording(
            "MiniLM f32 1×128",
            200,
            || {},
            || {
                let h = model.forward(&ids, &mask).expect("forward");
                std::hint::black_box(model.pool(&h, &mask).expect("pool"));
            },
        );
    } else {
        println!(
            "skipping MiniLM: {} not found; run models/fetch minilm",
            minilm.display()
        );
    }
    let smollm2 = cache.join(SMOLLM2_DIR);
    if smollm2.is_dir() {
        let model = Llama::load(&smollm2, DType::F32).expect("SmolLM2 loads");
        let prompt: Vec<u32> = (0..128u32).map(|i| 100 + (i * 7919) % 40000).collect();
        let prompt = Tensor::from_vec(prompt, [1, 128], Device::Cpu).expect("prompt");
        let cache = std::cell::RefCell::new(model.new_cache());
        let step = std::cell::Cell::new(0u32);
        let restart = || {
            let mut fresh = model.new_cache();
            model.forward_last(&prompt, &mut fresh).expect("prefill");
            *cache.borrow_mut() = fresh;
        };
        restart();
        race_recording(
            "SmolLM2 f32 decode step after 128",
            300,
            // Every 32 pairs the cache starts again from the prompt (untimed), so that
            // both arms see the same range of cache lengths, 128 to 192.
            || {
                if step.get().is_multiple_of(64) && step.get() > 0 {
                    restart();
                }
            },
            || {
                let token = 200 + (step.get() * 31) % 40000;
                let x = Tensor::from_vec(vec![token], [1, 1], Device::Cpu).expect("token");
                let out = model.forward_last(&x, &mut cache.borrow_mut());
                std::hint::black_box(out.expect("decode"));
                step.set(step.get() + 1);
            },
        );
    } else {
        println!(
            "skipping SmolLM2: {} not found; run models/fetch smollm2",
            smollm2.display()
        );
    }
}

fn main() {
    per_call();
    models();
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
