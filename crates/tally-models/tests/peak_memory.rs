//! Peak heap of forward passes against the weights and the largest live activations:
//! MiniLM at 1×128 and 8×128, SmolLM2 prefill of 128 tokens and a decode step after them.
//!
//! - W, the weights: heap bytes the loaded model holds (its weights, packed or not, its
//!   tokenizer and tables), measured by this binary's counting allocator across the load.
//! - A, the largest live activations: the most bytes that tensors held at once during the
//!   pass beyond the weights' own tensors ([`tally_tensor::peak_live_bytes`] less
//!   [`tally_tensor::live_bytes`] after loading): op outputs, inputs and the KV cache
//!   (a decode step's cache is live during it), each storage once.
//! - P, the pass's peak: the most heap bytes at once during the pass beyond the heap before
//!   the model was loaded, so it holds W, A, kernel scratch (GEMM packing, attention rows)
//!   and the buffers the pool keeps idle.
//!
//! Each pass runs three times: with the pool off (limit 0, as before the pool), then twice
//! with it on, the first filling it and the second reusing it. The goal is P ≤ W + 1.2·A;
//! the test prints every figure and the ratio P / (W + 1.2·A), and asserts it with the
//! pool warm, and, apart, what the pool alone is answerable for: P ≤ W + 1.2·A + the
//! scratch the same pass holds outside tensors with the pool off (GEMM packing, in blocks
//! of about 1 MiB even for SmolLM2's tied 49,152 × 576 output head; attention rows).
//! Checkpoints are not shipped: without them the test prints why and passes.

use tally_core::{DType, Device, Result};
use tally_cpu::buffers;
use tally_cpu::heap::{self as counting, Counting};
use tally_models::bert::{Bert, MINILM_DIR};
use tally_models::cache_dir;
use tally_models::llama::{Llama, GGUF_FILE, SMOLLM2_DIR};
use tally_tensor::{live_bytes, peak_live_bytes, reset_peak_live_bytes, Tensor};

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: f64 = (1 << 20) as f64;

/// One pass's figures, in bytes.
#[derive(Clone, Copy, Debug)]
struct Figures {
    weights: usize,
    live: usize,
    peak: usize,
    pooled: usize,
}

impl Figures {
    /// P / (W + 1.2·A): at most 1 meets the goal.
    fn ratio(&self) -> f64 {
        self.peak as f64 / (self.weights as f64 + 1.2 * self.live as f64)
    }
}

/// What a loaded model holds: heap bytes before loading, then the heap and tensor bytes
/// its weights add (the pool emptied, so no load-time buffer idles in it).
#[derive(Clone, Copy)]
struct Loaded {
    base: usize,
    weights: usize,
    weight_tensors: usize,
}

fn before_load() -> usize {
    buffers::clear();
    counting::current()
}

fn after_load(base: usize) -> Loaded {
    buffers::clear();
    Loaded {
        base,
        weights: counting::current() - base,
        weight_tensors: live_bytes(),
    }
}

/// Runs `pass` once, measuring A and P.
fn measure_pass<T>(m: Loaded, pass: impl FnOnce() -> Result<T>) -> Figures {
    reset_peak_live_bytes();
    counting::reset();
    let out = pass().expect("forward pass runs");
    let figures = Figures {
        weights: m.weights,
        live: peak_live_bytes() - m.weight_tensors,
        peak: counting::peak() - m.base,
        pooled: buffers::stats().held_bytes,
    };
    drop(out);
    figures
}

/// The pass with the pool off, then cold, then warm; printed, and the warm one returned.
fn three_ways<T>(name: &str, m: Loaded, mut pass: impl FnMut() -> Result<T>) -> [Figures; 3] {
    buffers::set_limit(0);
    let off = measure_pass(m, &mut pass);
    buffers::set_limit(buffers::DEFAULT_LIMIT);
    let cold = measure_pass(m, &mut pass);
    let warm = measure_pass(m, &mut pass);
    eprintln!(
        "{name}: W {:.1} MiB, A {:.2} MiB (largest live activations)",
        m.weights as f64 / MIB,
        warm.live as f64 / MIB
    );
    for (how, f) in [("pool off", off), ("pool cold", cold), ("pool warm", warm)] {
        eprintln!(
            "  {how:>9}: P {:7.2} MiB, P − W {:6.2} MiB = {:.2}·A; P / (W + 1.2·A) = {:.4}; pool holds {:.2} MiB after",
            f.peak as f64 / MIB,
            (f.peak as f64 - f.weights as f64) / MIB,
            (f.peak as f64 - f.weights as f64) / f.live.max(1) as f64,
            f.ratio(),
            f.pooled as f64 / MIB
        );
    }
    [off, cold, warm]
}

fn minilm(results: &mut Vec<(String, [Figures; 3])>) {
    let dir = cache_dir().join(MINILM_DIR);
    if !dir.join("model.safetensors").is_file() {
        eprintln!(
            "skipping MiniLM: {} not found; run models/fetch minilm",
            dir.display()
        );
        return;
    }
    let base = before_load();
    let model = Bert::load(&dir, DType::F32).expect("MiniLM loads");
    let m = after_load(base);
    for b in [1usize, 8] {
        let s = 128;
        let ids: Vec<u32> = (0..b * s).map(|i| 1000 + (i as u32 * 7) % 20000).collect();
        let ids = Tensor::from_vec(ids, [b, s], Device::Cpu).unwrap();
        let mask = Tensor::from_vec(vec![1u32; b * s], [b, s], Device::Cpu).unwrap();
        let name = format!("MiniLM {b}×{s}");
        let f = three_ways(&name, m, || model.forward(&ids, &mask));
        results.push((name, f));
    }
    drop(model);
    buffers::clear();
}

fn smollm2(results: &mut Vec<(String, [Figures; 3])>) {
    let dir = cache_dir().join(SMOLLM2_DIR);
    if !dir.join(GGUF_FILE).is_file() {
        eprintln!(
            "skipping SmolLM2: {} not found; run models/fetch smollm2",
            dir.display()
        );
        return;
    }
    let base = before_load();
    let model = Llama::load(&dir, DType::F32).expect("SmolLM2 loads");
    let m = after_load(base);
    let s = 128;
    let ids: Vec<u32> = (0..s).map(|i| 200 + (i as u32 * 31) % 40000).collect();
    let ids = Tensor::from_vec(ids, [1, s], Device::Cpu).unwrap();
    let name = format!("SmolLM2 prefill 1×{s}");
    let f = three_ways(&name, m, || {
        let mut cache = model.new_cache();
        model.forward(&ids, &mut cache)
    });
    results.push((name, f));
    let mut cache = model.new_cache();
    drop(model.forward(&ids, &mut cache).unwrap());
    let next = Tensor::from_vec(vec![1234u32], [1, 1], Device::Cpu).unwrap();
    let name = format!("SmolLM2 decode after {s}");
    let f = three_ways(&name, m, || {
        cache.truncate(s);
        model.forward_last(&next, &mut cache)
    });
    results.push((name, f));
}

#[test]
fn peak_within_weights_plus_1_2_live_activations() {
    let mut results = Vec::new();
    minilm(&mut results);
    smollm2(&mut results);
    for (name, [off, _, warm]) in &results {
        // The goal: the pass's peak within the weights and 1.2 × its live activations,
        // scratch and the pool's idle buffers included.
        let goal = warm.weights as f64 + 1.2 * warm.live as f64;
        assert!(
            warm.peak as f64 <= goal,
            "{name}: peak {} > W + 1.2·A = {goal} (P − W = {:.3}·A)",
            warm.peak,
            (warm.peak as f64 - warm.weights as f64) / warm.live.max(1) as f64
        );
        // What the pass holds outside tensors without the pool: GEMM packing and tiles,
        // attention rows, allocator slack. The pool may add idle buffers of at most a
        // tenth of those it has handed out, so P ≤ W + 1.2·A + that scratch (256 KiB of
        // slack for the allocator's own rounding).
        let scratch = off.peak.saturating_sub(off.weights + off.live);
        let bound = warm.weights as f64 + 1.2 * warm.live as f64 + scratch as f64 + 262144.0;
        eprintln!(
            "{name}: P {:.2} MiB ≤ W + 1.2·A + scratch {:.2} MiB (scratch without the pool {:.2} MiB)",
            warm.peak as f64 / MIB,
            bound / MIB,
            scratch as f64 / MIB
        );
        assert!(
            warm.peak as f64 <= bound,
            "{name}: peak {} > W + 1.2·A + scratch = {bound}",
            warm.peak
        );
    }
}
