//! Non-causal attention frees its scratch when the call returns. Held per thread, a
//! head's score block (s_q × s_k f32) stayed allocated through the ops after the
//! attention, and in BERT that is the feed-forward product where the pass peaks. In a
//! process of its own: it counts the whole heap through the counting allocator.

use tally_core::backend::AttentionParams;
use tally_core::Device;
use tally_cpu::buffers;
use tally_cpu::heap::{self, Counting};
use tally_tensor::Tensor;

#[global_allocator]
static ALLOC: Counting = Counting;

fn heads(b: usize, h: usize, s: usize, d: usize, seed: usize) -> Tensor {
    let data: Vec<f32> = (0..b * h * s * d)
        .map(|i| ((i * 7 + seed) % 13) as f32 / 13.0 - 0.5)
        .collect();
    Tensor::from_vec(data, [b, h, s, d], Device::Cpu).expect("tensor")
}

#[test]
fn non_causal_attention_keeps_no_scratch_after_the_call() {
    // 512 queries over 512 keys: a head's score block is 1 MiB of f32.
    let (s, d) = (512, 32);
    let score_block = s * s * 4;
    let (q, k, v) = (
        heads(1, 4, s, d, 1),
        heads(1, 4, s, d, 2),
        heads(1, 4, s, d, 3),
    );
    let p = AttentionParams {
        scale: 1.0 / (d as f32).sqrt(),
        causal: false,
    };
    // Two workers wherever it runs: the kernels' per-thread scratch below grows with them.
    tally_tensor::set_num_threads(2).expect("the only test here sets the pool first");
    buffers::clear();
    let before = heap::current();
    let out = q.attention(&k, &v, None, p).expect("attention");
    let sum: f32 = out.to_vec::<f32>().expect("values").iter().sum();
    assert!(sum.is_finite());
    drop(out);
    buffers::clear();
    let kept = heap::current().saturating_sub(before);
    eprintln!("kept after the call: {kept} bytes (one score block: {score_block})");
    // What may stay: the product kernels' own per-thread packing scratch (a packed A block
    // of at most 96 KiB and a packed Kᵀ of 64 KiB on each of the 2 threads), far below one
    // score block.
    assert!(
        kept < score_block / 2,
        "{kept} bytes stayed allocated after the call (one score block is {score_block})"
    );
}
