//! candle (candle-transformers 0.11) alone, as `tally bench` runs Tally: one model, one
//! shape, warm, printing a `bench … median_s=…` line that `benches/pytorch/compare.sh`
//! reads beside `tally bench` and PyTorch's `bench.py`. The same checkpoints as Tally's
//! (`models/fetch minilm smollm2`), the same inputs as the `models` bench. candle's
//! threads follow `RAYON_NUM_THREADS` (all cores when unset).
//!
//! `cargo run --release -p tally-benches --example candle_bench -- minilm --batch 8 --seq 128`
//! `cargo run --release -p tally-benches --example candle_bench -- smollm2 --past 128 --seq 1`

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::llama;
use clap::{Parser, ValueEnum};
use tally::models::bert::MINILM_DIR;
use tally::models::llama::{Llama, GGUF_FILE, SMOLLM2_DIR};
use tally_benches::candle_peer;

/// The models candle runs here.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Model {
    /// all-MiniLM-L6-v2 sentence embeddings.
    Minilm,
    /// SmolLM2-135M, dequantised from Tally's GGUF.
    Smollm2,
}

/// One candle workload, timed pass by pass.
#[derive(Parser)]
struct Args {
    /// Model to run.
    model: Model,
    /// Sequences per pass.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Tokens per sequence (new tokens, for smollm2).
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// Tokens already in the KV cache before each measured pass (smollm2).
    #[arg(long, default_value_t = 0)]
    past: usize,
    /// Passes to measure, after one unmeasured warm-up pass.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

fn main() {
    let args = Args::parse();
    let cache = tally::models::cache_dir();
    let mut pass: Box<dyn FnMut()> = match args.model {
        Model::Minilm => {
            let model = candle_peer::minilm(&cache.join(MINILM_DIR));
            let ids = candle_peer::bert_ids(args.batch, args.seq);
            let ids = Tensor::from_vec(ids, (args.batch, args.seq), &Device::Cpu).unwrap();
            Box::new(move || drop(candle_peer::minilm_embed(&model, &ids)))
        }
        Model::Smollm2 => {
            assert_eq!(args.batch, 1, "candle's Llama here runs batch 1");
            let dir = cache.join(SMOLLM2_DIR);
            let config = Llama::load(&dir, tally::DType::F32)
                .expect("tally reads SmolLM2's configuration")
                .config()
                .clone();
            let model = candle_peer::smollm2(&dir.join(GGUF_FILE), &config);
            let cfg = candle_peer::llama_config(&config, true);
            let ids = candle_peer::prompt_ids(args.past + args.seq);
            let fresh = || llama::Cache::new(true, DType::F32, &cfg, &Device::Cpu).unwrap();
            let mut prompt = fresh();
            if args.past > 0 {
                let past =
                    Tensor::from_vec(ids[..args.past].to_vec(), (1, args.past), &Device::Cpu);
                model.forward(&past.unwrap(), 0, &mut prompt).unwrap();
            }
            let new = Tensor::from_vec(ids[args.past..].to_vec(), (1, args.seq), &Device::Cpu);
            let new = new.unwrap();
            let past = args.past;
            // Each pass starts from the prompt's cache (a clone shares its tensors).
            Box::new(move || {
                let mut cache = prompt.clone();
                drop(model.forward(&new, past, &mut cache).unwrap());
            })
        }
    };
    pass();
    let mut secs: Vec<f64> = (0..args.repeat.max(1))
        .map(|_| {
            let t = Instant::now();
            pass();
            t.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    println!(
        "bench engine=candle model={:?} batch={} seq={} past={} threads={} passes={} median_s={:.9} min_s={:.9} max_s={:.9}",
        args.model,
        args.batch,
        args.seq,
        args.past,
        candle_core::utils::get_num_threads(),
        secs.len(),
        secs[secs.len() / 2],
        secs[0],
        secs[secs.len() - 1]
    );
}
