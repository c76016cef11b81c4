//! candle (candle-transformers 0.11) alone, as `tally bench` runs Tally: one model, one
//! shape, warm, printing a `bench … median_s=…` line that `benches/pytorch/compare.sh`
//! reads beside `tally bench` and PyTorch's `bench.py`. The same checkpoints as Tally's
//! (`models/fetch minilm smollm2`), the same inputs as the `models` bench. candle's
//! threads follow `RAYON_NUM_THREADS` (all cores when unset).
//!
//! `cargo run --release -p tally-benches --example candle_bench -- minilm --batch 8 --seq 128`
//! `cargo run --release -p tally-benches --example candle_bench -- smollm2 --past 128 --seq 1`

use std::process::ExitCode;
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
    /// Passes to measure (at least 1), after one unmeasured warm-up pass.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candle_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the model, checks the shape against it, then times the passes and prints the line.
fn run(args: Args) -> Result<(), String> {
    if args.batch == 0 || args.seq == 0 || args.repeat == 0 {
        return Err("--batch, --seq and --repeat take at least 1".into());
    }
    let cache = tally::models::cache_dir();
    let (dir, fetch) = match args.model {
        Model::Minilm => (cache.join(MINILM_DIR), "minilm"),
        Model::Smollm2 => (cache.join(SMOLLM2_DIR), "smollm2"),
    };
    if !dir.exists() {
        return Err(format!(
            "{} is missing; run models/fetch {fetch}",
            dir.display()
        ));
    }
    let mut pass: Box<dyn FnMut() -> candle_core::Result<()>> = match args.model {
        Model::Minilm => {
            if args.past > 0 {
                return Err(
                    "--past caches tokens for a decoder (smollm2); minilm has no cache".into(),
                );
            }
            let (model, positions) = candle_peer::minilm(&dir)?;
            if args.seq > positions {
                return Err(format!(
                    "--seq {} is past MiniLM's {positions} positions",
                    args.seq
                ));
            }
            let ids = candle_peer::bert_ids(args.batch, args.seq);
            let ids = Tensor::from_vec(ids, (args.batch, args.seq), &Device::Cpu).map_err(text)?;
            Box::new(move || candle_peer::minilm_embed(&model, &ids).map(drop))
        }
        Model::Smollm2 => {
            if args.batch != 1 {
                return Err(format!(
                    "candle's Llama here runs one sequence (got --batch {})",
                    args.batch
                ));
            }
            let config = Llama::load(&dir, tally::DType::F32)
                .map_err(text)?
                .config()
                .clone();
            if args.past + args.seq > config.max_position {
                return Err(format!(
                    "--past + --seq is {}, past SmolLM2's {} positions",
                    args.past + args.seq,
                    config.max_position
                ));
            }
            let model = candle_peer::smollm2(&dir.join(GGUF_FILE), &config)?;
            let cfg = candle_peer::llama_config(&config, true);
            let ids = candle_peer::prompt_ids(args.past + args.seq);
            let mut prompt =
                llama::Cache::new(true, DType::F32, &cfg, &Device::Cpu).map_err(text)?;
            if args.past > 0 {
                let past =
                    Tensor::from_vec(ids[..args.past].to_vec(), (1, args.past), &Device::Cpu);
                model
                    .forward(&past.map_err(text)?, 0, &mut prompt)
                    .map_err(text)?;
            }
            let new = Tensor::from_vec(ids[args.past..].to_vec(), (1, args.seq), &Device::Cpu);
            let new = new.map_err(text)?;
            let past = args.past;
            // Each pass starts from the prompt's cache (a clone shares its tensors).
            Box::new(move || {
                let mut cache = prompt.clone();
                model.forward(&new, past, &mut cache).map(drop)
            })
        }
    };
    pass().map_err(text)?;
    let mut secs = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let t = Instant::now();
        pass().map_err(text)?;
        secs.push(t.elapsed().as_secs_f64());
    }
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
    Ok(())
}

/// An error's message.
fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
