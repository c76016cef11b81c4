//! Whole models, Tally against candle (candle-transformers 0.11) on the same weights, the
//! same inputs and the same thread count, interleaved pass by pass so machine noise hits
//! both alike. For each workload it prints the medians (with min–max), the ratio
//! candle / Tally (above 1: Tally is faster), and Tally's executed FPO and bytes per
//! second at its median (FPO counted by the kernels, not criterion's "elements").
//! Before timing, each pair's outputs are compared, so both engines compute the same thing.
//!
//! `cargo bench -p tally-benches --bench models` (needs `models/fetch minilm smollm2`;
//! a workload whose checkpoint is missing is skipped with the fetch command).
//! `TALLY_BENCH_QUICK=1` runs fewer passes.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType as CDType, Device as CDevice, Tensor as CTensor};
use candle_transformers::models::llama;
use tally::models::bert::{Bert, MINILM_DIR};
use tally::models::llama::{Llama, GGUF_FILE, SMOLLM2_DIR};
use tally::{measure, DType, Device, Ledger, Tensor};
use tally_benches::candle_peer;

/// Seconds of each pass of two engines, interleaved.
struct Race {
    tally: Vec<f64>,
    candle: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn span(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)))
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1e3)
}

/// Times `passes` rounds of `a` and `b`: each round runs one engine three times, then the
/// other three times (which goes first alternates), and keeps the last two passes of each
/// run. Blocks, not single passes, because each engine leaves the allocator and the caches
/// in its own state, which taxes a pass of the other engine that follows it directly.
fn race(passes: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> Race {
    let mut r = Race {
        tally: Vec::new(),
        candle: Vec::new(),
    };
    let block = |f: &mut dyn FnMut(), into: &mut Vec<f64>| {
        f();
        for _ in 0..2 {
            let t = Instant::now();
            f();
            into.push(t.elapsed().as_secs_f64());
        }
    };
    for i in 0..passes {
        if i % 2 == 0 {
            block(&mut a, &mut r.tally);
            block(&mut b, &mut r.candle);
        } else {
            block(&mut b, &mut r.candle);
            block(&mut a, &mut r.tally);
        }
    }
    r
}

/// One table row: medians, spread, ratio, and Tally's rates from one counted pass.
fn report(name: &str, r: &Race, counted: &Ledger, per: &str, units: f64) {
    let (t, c) = (median(&r.tally), median(&r.candle));
    let (tl, th) = span(&r.tally);
    let (cl, ch) = span(&r.candle);
    let w = counted.total().work;
    println!(
        "| {name} | {} [{}–{}] | {} [{}–{}] | {:.2}× | {:.1} | {:.2} | {:.1} {per} | {:.1} {per} |",
        ms(t),
        ms(tl),
        ms(th),
        ms(c),
        ms(cl),
        ms(ch),
        c / t,
        w.fpo() as f64 / t / 1e9,
        w.bytes() as f64 / t / 1e9,
        units / t,
        units / c,
    );
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt())
}

fn minilm(dir: &Path, passes: usize) {
    let model = Bert::load(dir, DType::F32).expect("tally loads MiniLM");
    let (peer, _) = candle_peer::minilm(dir).expect("candle loads MiniLM");
    for (b, s) in [(1usize, 128usize), (1, 512), (8, 128)] {
        let ids = candle_peer::bert_ids(b, s);
        let t_ids = Tensor::from_vec(ids.clone(), [b, s], Device::Cpu).unwrap();
        let t_mask = Tensor::from_vec(vec![1u32; b * s], [b, s], Device::Cpu).unwrap();
        let c_ids = CTensor::from_vec(ids, (b, s), &CDevice::Cpu).unwrap();
        let ours = || {
            let h = model.forward(&t_ids, &t_mask).unwrap();
            model.pool(&h, &t_mask).unwrap()
        };
        let theirs = || candle_peer::minilm_embed(&peer, &c_ids).unwrap();
        let a = ours().to_vec::<f32>().unwrap();
        let c: Vec<f32> = theirs().flatten_all().unwrap().to_vec1().unwrap();
        let cos = cosine(&a, &c);
        assert!(cos > 0.99999, "MiniLM {b}x{s}: cosine to candle {cos}");
        let (_, counted) = measure(ours);
        let r = race(passes, || drop(ours()), || drop(theirs()));
        report(
            &format!("MiniLM f32 {b}×{s}"),
            &r,
            &counted,
            "seq/s",
            b as f64,
        );
    }
}

fn smollm2(dir: &Path, passes: usize) {
    let model = Llama::load(dir, DType::F32).expect("tally loads SmolLM2");
    let c = model.config().clone();
    let peer = candle_peer::smollm2(&dir.join(GGUF_FILE), &c).expect("candle loads SmolLM2");
    let ccfg = candle_peer::llama_config(&c, true);
    let new_peer_cache =
        || llama::Cache::new(true, CDType::F32, &ccfg, &CDevice::Cpu).expect("candle cache");
    let s = 128;
    let ids = candle_peer::prompt_ids(s);
    let t_ids = Tensor::from_vec(ids.clone(), [1, s], Device::Cpu).unwrap();
    let c_ids = CTensor::from_vec(ids, (1, s), &CDevice::Cpu).unwrap();

    // Prefill: the prompt's last-position logits, from an empty cache.
    let ours = || model.forward_last(&t_ids, &mut model.new_cache()).unwrap();
    let theirs = || peer.forward(&c_ids, 0, &mut new_peer_cache()).unwrap();
    let a = ours().to_vec::<f32>().unwrap();
    let b: Vec<f32> = theirs().flatten_all().unwrap().to_vec1().unwrap();
    let err = a
        .iter()
        .zip(&b)
        .fold(0f32, |e, (x, y)| e.max((x - y).abs()));
    assert!(
        err < 1e-2,
        "SmolLM2 prefill logits differ from candle by {err}"
    );
    let (_, counted) = measure(ours);
    let r = race(passes, || drop(ours()), || drop(theirs()));
    report(
        &format!("SmolLM2 f32 prefill 1×{s}"),
        &r,
        &counted,
        "tok/s",
        s as f64,
    );

    // Decode: one token at a time after the prompt, each engine with its own cache.
    let mut t_cache = model.new_cache();
    model.forward_last(&t_ids, &mut t_cache).unwrap();
    let mut c_cache = new_peer_cache();
    peer.forward(&c_ids, 0, &mut c_cache).unwrap();
    let next = |i: usize| 200 + (i as u32 * 31) % 40000;
    let (mut ti, mut ci) = (0usize, 0usize);
    let step_tally = Tensor::from_vec(vec![next(0)], [1, 1], Device::Cpu).unwrap();
    // One step counted on its own: the cost of a token after the prompt.
    let (_, step_ledger) = {
        let mut probe = model.new_cache();
        model.forward_last(&t_ids, &mut probe).unwrap();
        measure(|| model.forward_last(&step_tally, &mut probe).unwrap())
    };
    let steps = passes * 2;
    let r = race(
        steps,
        || {
            let x = Tensor::from_vec(vec![next(ti)], [1, 1], Device::Cpu).unwrap();
            model.forward_last(&x, &mut t_cache).unwrap();
            ti += 1;
        },
        || {
            let x = CTensor::from_vec(vec![next(ci)], (1, 1), &CDevice::Cpu).unwrap();
            peer.forward(&x, s + ci, &mut c_cache).unwrap();
            ci += 1;
        },
    );
    report(
        &format!("SmolLM2 f32 decode after {s} ({} steps)", 3 * steps),
        &r,
        &step_ledger,
        "tok/s",
        1.0,
    );
}

fn main() {
    let quick = std::env::var_os("TALLY_BENCH_QUICK").is_some();
    let passes = if quick { 3 } else { 11 };
    let cache = tally::models::cache_dir();
    println!(
        "Tally against candle 0.11 (candle-transformers), f32, {} threads, medians of {} passes in interleaved blocks [min–max]\n",
        tally::num_threads(),
        2 * passes
    );
    println!("| workload | Tally | candle | candle / Tally | Tally GFLOP/s (executed) | Tally GB/s (counted) | Tally | candle |");
    println!("|---|---|---|---|---|---|---|---|");
    for (dir, run, fetch) in [
        (MINILM_DIR, minilm as fn(&Path, usize), "minilm"),
        (SMOLLM2_DIR, smollm2, "smollm2"),
    ] {
        let path = cache.join(dir);
        if path.exists() {
            run(&path, passes);
        } else {
            println!(
                "skipping {dir}: not in {}; run models/fetch {fetch}",
                cache.display()
            );
        }
    }
}
