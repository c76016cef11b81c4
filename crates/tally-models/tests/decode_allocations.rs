//! SmolLM2 decode steps against the system allocator: after a 128-token prefill and three
//! warm-up steps, one more decode step takes every op output, gathered view and KV
//! position from buffers made before (the CPU buffer pool and the KV cache's reserved
//! room), and the GEMM's packing and row scratch from per-thread buffers, so it allocates
//! no large buffer (≥ 4 KiB) at all. The same step with the pool turned off must allocate
//! large buffers, or the test could not fail. This binary's counting global
//! allocator counts; the checkpoint is not shipped: without `cache_dir()/smollm2`
//! (`models/fetch smollm2`) the test prints why and passes.

use std::collections::BTreeMap;

use tally_core::{measure, DType, Device};
use tally_cpu::buffers;
use tally_cpu::heap::{self as counting, Counting, LARGE};
use tally_models::cache_dir;
use tally_models::llama::{KvCache, Llama, GGUF_FILE, SMOLLM2_DIR};
use tally_tensor::Tensor;

#[global_allocator]
static ALLOC: Counting = Counting;

/// The model in `dtype`, or `None` (the reason on stderr) when it has not been fetched.
fn model(dtype: DType) -> Option<Llama> {
    let dir = cache_dir().join(SMOLLM2_DIR);
    if !dir.join(GGUF_FILE).is_file() {
        eprintln!(
            "skipping: {} not found; run models/fetch smollm2",
            dir.display()
        );
        return None;
    }
    Some(Llama::load(&dir, dtype).expect("SmolLM2-135M-Instruct loads"))
}

/// Token `i` of a fixed id sequence.
fn token(i: usize) -> u32 {
    200 + (i as u32 * 31) % 40000
}

/// One decode step (token `i`): its allocation counts and sizes.
fn step(
    model: &Llama,
    cache: &mut KvCache,
    i: usize,
) -> (counting::Counts, BTreeMap<usize, usize>) {
    let x = Tensor::from_vec(vec![token(i)], [1, 1], Device::Cpu).unwrap();
    counting::reset();
    let logits = model.forward_last(&x, cache).unwrap();
    let out = (counting::counts(), counting::sizes());
    drop(logits);
    out
}

fn show(what: &str, (c, sizes): &(counting::Counts, BTreeMap<usize, usize>)) {
    eprintln!(
        "{what}: {} allocations, {} bytes; {} of ≥ {LARGE} bytes, {} bytes\n  by size: {sizes:?}",
        c.count, c.bytes, c.large, c.large_bytes
    );
}

/// The large sizes (count) of `sizes` beyond what `allowed` admits.
fn beyond(sizes: &BTreeMap<usize, usize>, allowed: &BTreeMap<usize, usize>) -> Vec<(usize, usize)> {
    sizes
        .iter()
        .filter(|&(&s, _)| s >= LARGE)
        .map(|(&s, &n)| (s, n.saturating_sub(allowed.get(&s).copied().unwrap_or(0))))
        .filter(|&(_, n)| n > 0)
        .collect()
}

#[test]
fn decode_step_after_warm_up_allocates_no_large_buffer() {
    // bf16 runs its own product paths (AMX tiles and their few-row GEMVs where the host
    // has them), so it is held to the same rule.
    for dtype in [DType::F32, DType::BF16] {
        eprintln!("{dtype}:");
        decode_without_large_allocations(dtype);
    }
}

fn decode_without_large_allocations(dtype: DType) {
    let Some(model) = model(dtype) else { return };
    let allowed = BTreeMap::new(); // no large allocation is allowed
    let prompt: Vec<u32> = (0..128).map(token).collect();
    let mut cache = model.new_cache();
    let ids = Tensor::from_vec(prompt, [1, 128], Device::Cpu).unwrap();
    drop(model.forward(&ids, &mut cache).unwrap());
    let mut i = 128;
    for _ in 0..3 {
        show("warm-up step", &step(&model, &mut cache, i));
        i += 1;
    }
    let steady = step(&model, &mut cache, i);
    show("decode step", &steady);
    i += 1;

    // The same step inside a measured region: the meter's records are bookkeeping.
    let (measured, ledger) = measure(|| step(&model, &mut cache, i));
    i += 1;
    show("decode step, measured", &measured);
    eprintln!("  ({} records in the ledger)", ledger.records().len());

    // With the pool off, the step must allocate its outputs anew.
    buffers::set_limit(0);
    let off = step(&model, &mut cache, i);
    i += 1;
    show("decode step, pool off", &off);
    buffers::set_limit(buffers::DEFAULT_LIMIT);
    show(
        "decode step, pool on again (refilling)",
        &step(&model, &mut cache, i),
    );

    assert!(
        !beyond(&off.1, &allowed).is_empty(),
        "with the pool off a step allocates its outputs: {off:?}"
    );
    let extra = beyond(&steady.1, &allowed);
    assert!(
        extra.is_empty(),
        "{dtype}: a decode step after warm-up allocated large buffers (size, count): {extra:?}"
    );
}
