//! The models the CLI can run, each as a measured workload: what ran, what it cost, and
//! the facts a report states beside the counts.

use std::time::Instant;

use tally::core::{try_measure, DType, Device, Error, Ledger, Result};
use tally::models::bert::{Bert, MINILM_DIR};
use tally::models::digits::{Digits, DigitsMlp};
use tally::models::llama::{Llama, LlamaConfig, GGUF_FILE, SMOLLM2_DIR};
use tally::models::mobilenet::{MobileNetV2, MOBILENET_DIR};
use tally::Tensor;

/// Models the CLI knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// The shipped digits MLP (64→128→128→10), no download needed.
    #[value(name = "digits-mlp")]
    DigitsMlp,
    /// all-MiniLM-L6-v2 sentence embeddings (fetch first: `models/fetch minilm`).
    #[value(name = "minilm", alias = "all-minilm-l6-v2")]
    Minilm,
    /// SmolLM2-135M-Instruct, a Llama decoder (fetch first: `models/fetch smollm2`).
    #[value(name = "smollm2", alias = "smollm2-135m-instruct")]
    Smollm2,
    /// MobileNetV2 on ImageNet (fetch first: `models/fetch mobilenet`).
    #[value(name = "mobilenet", alias = "mobilenet-v2")]
    Mobilenet,
}

impl Model {
    /// The name reports print.
    pub fn name(self) -> &'static str {
        match self {
            Model::DigitsMlp => "digits-mlp",
            Model::Minilm => "all-minilm-l6-v2",
            Model::Smollm2 => "smollm2-135m-instruct",
            Model::Mobilenet => "mobilenet-v2",
        }
    }
}

/// One measured pass and what is known about it.
pub struct Measured {
    /// The kernels' records (of the fastest pass).
    pub ledger: Ledger,
    /// Wall-clock seconds of every measured pass, in order (recording included).
    pub pass_wall_s: Vec<f64>,
    /// Examples in the pass (images, sentences).
    pub examples: usize,
    /// Facts for the report (`run` in the JSON).
    pub facts: serde_json::Map<String, serde_json::Value>,
    /// The model's analytic matmul/attention-product FPO for this pass, when it has a formula.
    pub analytic_contraction_fpo: Option<u64>,
    /// Why the executed count may sit below the dense one for this pass, when it does.
    pub skipped_note: Option<String>,
}

/// The model and input options `profile`, `reconcile` and `price` share (flattened into each).
#[derive(clap::Args)]
pub struct RunArgs {
    /// Model to run.
    #[arg(value_enum, default_value = "digits-mlp")]
    pub model: Model,
    /// Examples per forward pass (digits: default the 360 held-out images; others: 1).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Tokens per sequence (text models).
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Weight and activation dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Forward passes to measure; the one with the least kernel time is kept.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Tokens already in the KV cache before the measured pass (smollm2): `--past 128
    /// --seq 1` measures one decode step after a 128-token prompt.
    #[arg(long, default_value_t = 0)]
    pub past: usize,
    /// Where to run: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seeded random weights of the model's real shapes instead of its checkpoint (the
    /// same work and speed, meaningless outputs): minilm still reads its config and
    /// tokenizer from the cache, smollm2 needs no file. For machines the checkpoints cannot
    /// reach.
    #[arg(long, value_name = "SEED")]
    pub seeded: Option<u64>,
}

impl RunArgs {
    /// The parsed dtype.
    pub fn dtype(&self) -> Result<DType> {
        float_dtype(&self.dtype)
    }

    /// The shape knobs as asked.
    pub fn shape(&self) -> Result<Shape> {
        Ok(Shape {
            batch: self.batch,
            seq: self.seq,
            dtype: self.dtype()?,
            repeat: self.repeat,
            past: self.past,
            device: self.device.parse()?,
            seeded: self.seeded,
            lockstep: false,
        })
    }

    /// Measures the model as asked, with energy read around the whole measurement (load,
    /// warm-up and every pass, as the reading's window says).
    pub fn measure(&self) -> Result<(Measured, tally_energy::EnergyReading)> {
        let shape = self.shape()?;
        // Work on a GPU is measured by that GPU's counter; the host's is not in it.
        let meter = match shape.device {
            Device::Cpu => tally_energy::EnergyMeter::detect(),
            Device::Cuda(n) => tally_energy::EnergyMeter::detect_gpu(n as u32),
        };
        let (m, energy) = meter.measure_energy(|| measure(self.model, &shape));
        Ok((m?, energy))
    }
}

/// Parses a float dtype name given to `--dtype`.
pub fn float_dtype(name: &str) -> Result<DType> {
    DType::parse(name).filter(|d| d.is_float()).ok_or_else(|| {
        Error::invalid(
            "profile",
            format!("--dtype {name}: expected f32, bf16 or f16"),
        )
    })
}

/// Shape knobs shared by the commands.
pub struct Shape {
    /// Examples per pass (None: the model's default).
    pub batch: Option<usize>,
    /// Tokens per sequence for text models.
    pub seq: usize,
    /// Weight and activation dtype.
    pub dtype: DType,
    /// Passes to measure; the fastest is kept.
    pub repeat: usize,
    /// Tokens cached before each measured pass (decoders).
    pub past: usize,
    /// Where the model runs.
    pub device: Device,
    /// Seeded random weights (this seed) instead of the checkpoint.
    pub seeded: Option<u64>,
    /// Paced from standard input (`tally bench --lockstep`): each measured pass waits for
    /// a line, and its wall-clock time is printed as soon as it ends.
    pub lockstep: bool,
}

/// Runs `pass` once to warm up, then `shape.repeat` times measured; keeps the fastest
/// ledger, and returns every measured pass's wall-clock time (seconds, taken outside the
/// meter, so it includes what recording costs). With `shape.lockstep`, each measured pass
/// first waits for a line on standard input (the end of input ends the passes early) and
/// prints `pass_s=SECONDS` when done, so that a driver can interleave two processes pass by
/// pass (`benches/counting_overhead.sh`). On a GPU the measured passes, and only they, run
/// inside a profiler range.
fn best_of<T>(shape: &Shape, mut pass: impl FnMut() -> Result<T>) -> Result<(T, Ledger, Vec<f64>)> {
    if shape.repeat == 0 {
        return Err(Error::invalid("profile", "--repeat must be at least 1"));
    }
    pass()?;
    // On a GPU, the measured passes are the profiler range: under `ncu --profile-from-start
    // off` (gpu/ncu.sh) exactly their kernels are captured, not the load, warm-up or prompt.
    let _range = match shape.device {
        Device::Cuda(n) => Some(tally_cuda::CudaDevice::get(n)?.profiler_range()?),
        Device::Cpu => None,
    };
    let mut best: Option<(T, Ledger)> = None;
    let mut walls = Vec::with_capacity(shape.repeat);
    for _ in 0..shape.repeat {
        if shape.lockstep && !crate::lockstep::wait_for_go()? {
            break;
        }
        let started = Instant::now();
        let (out, ledger) = try_measure(&mut pass)?;
        let wall = started.elapsed().as_secs_f64();
        walls.push(wall);
        if shape.lockstep {
            crate::lockstep::report(wall)?;
        }
        if let Some(why) = ledger.unresolved().first() {
            return Err(Error::invalid(
                "profile",
                format!("a device's counters could not be read: {why}"),
            ));
        }
        if best
            .as_ref()
            .is_none_or(|(_, b)| ledger.total().elapsed_ns < b.total().elapsed_ns)
        {
            best = Some((out, ledger));
        }
    }
    best.map(|(out, ledger)| (out, ledger, walls))
        .ok_or_else(|| Error::invalid("profile", "nothing measured"))
}

/// Measures the model on its default or requested input.
pub fn measure(model: Model, shape: &Shape) -> Result<Measured> {
    if shape.past > 0 && model != Model::Smollm2 {
        return Err(Error::invalid(
            "profile",
            format!(
                "--past caches tokens for a decoder (smollm2); {} has no cache",
                model.name()
            ),
        ));
    }
    if shape.seeded.is_some() && matches!(model, Model::DigitsMlp | Model::Mobilenet) {
        return Err(Error::invalid(
            "profile",
            format!(
                "--seeded is for the checkpoints too large to move (minilm, smollm2); {} loads its own",
                model.name()
            ),
        ));
    }
    match model {
        Model::DigitsMlp => digits(shape),
        Model::Minilm => minilm(shape),
        Model::Smollm2 => smollm2(shape),
        Model::Mobilenet => mobilenet(shape),
    }
}

fn digits(shape: &Shape) -> Result<Measured> {
    let dir = tally::models::models_dir().join("digits");
    let model = DigitsMlp::load_on(&dir.join("mlp.safetensors"), shape.dtype, shape.device)?;
    let data = Digits::load(&dir.join("digits.csv.gz"))?.held_out();
    let data = match shape.batch {
        Some(0) => return Err(Error::invalid("profile", "--batch must be at least 1")),
        Some(b) => data.take(b),
        None => data,
    };
    let x = data.tensor(shape.device)?.to_dtype(shape.dtype)?;
    let (logits, ledger, walls) = best_of(shape, || model.forward(&x))?;
    let accuracy = DigitsMlp::accuracy(&logits, &data.labels)?;
    let mut facts = serde_json::Map::new();
    facts.insert("batch".into(), data.len().into());
    facts.insert("parameters".into(), model.num_params().into());
    facts.insert("accuracy".into(), accuracy.into());
    Ok(Measured {
        ledger,
        pass_wall_s: walls,
        examples: data.len(),
        facts,
        analytic_contraction_fpo: None,
        skipped_note: None,
    })
}

/// A fixed English paragraph, tokenized and cut to `seq` tokens: a synthetic but real-text
/// input of exactly the requested shape, with no padding.
const PARAGRAPH: &str = "Tally is an inference runtime whose kernels count the floating-point \
operations and bytes they execute, so that every result can carry its price tag: the work \
needed to produce it per example, beside time, energy and memory. ";

fn minilm(shape: &Shape) -> Result<Measured> {
    let dir = tally::models::cache_dir().join(MINILM_DIR);
    let model = match shape.seeded {
        Some(seed) => Bert::seeded(&dir, shape.dtype, shape.device, seed)?,
        None => Bert::load_on(&dir, shape.dtype, shape.device)?,
    };
    let batch = shape.batch.unwrap_or(1);
    // The tokenizer truncates at sentence-transformers' 256; the position table reaches 512.
    let max = model.config().max_position_embeddings;
    if batch == 0 || shape.seq < 2 || shape.seq > max {
        return Err(Error::invalid(
            "profile",
            format!(
                "minilm takes --batch ≥ 1 and 2 ≤ --seq ≤ {max} (got {batch} × {})",
                shape.seq
            ),
        ));
    }
    let text = PARAGRAPH.repeat(model.tokenizer().max_len() / 20 + 1);
    let full = model.tokenize(&[text.as_str()])?.ids.to_vec::<u32>()?;
    // [CLS], the paragraph's word pieces cycled to length, [SEP]: real text, no padding.
    let (cls, body, sep) = (full[0], &full[1..full.len() - 1], full[full.len() - 1]);
    let row: Vec<u32> = std::iter::once(cls)
        .chain(body.iter().copied().cycle().take(shape.seq - 2))
        .chain(std::iter::once(sep))
        .collect();
    let all: Vec<u32> = (0..batch).flat_map(|_| row.iter().copied()).collect();
    let ids = Tensor::from_vec(all, [batch, shape.seq], shape.device)?;
    let mask = Tensor::from_vec(
        vec![1u32; batch * shape.seq],
        [batch, shape.seq],
        shape.device,
    )?;
    let (emb, ledger, walls) = best_of(shape, || {
        let hidden = model.forward(&ids, &mask)?;
        model.pool(&hidden, &mask)
    })?;
    let mut facts = serde_json::Map::new();
    facts.insert("batch".into(), batch.into());
    facts.insert("seq".into(), shape.seq.into());
    facts.insert("parameters".into(), model.num_params().into());
    facts.insert("embedding_dim".into(), emb.dims()[1].into());
    Ok(Measured {
        ledger,
        pass_wall_s: walls,
        examples: batch,
        facts,
        analytic_contraction_fpo: Some(Bert::analytic_matmul_fpo(batch, shape.seq)),
        skipped_note: None,
    })
}

fn smollm2(shape: &Shape) -> Result<Measured> {
    let model = match shape.seeded {
        Some(seed) => Llama::seeded(LlamaConfig::smollm2_135m(), shape.dtype, shape.device, seed)?,
        None => Llama::from_gguf_on(
            &tally::models::cache_dir().join(SMOLLM2_DIR).join(GGUF_FILE),
            shape.dtype,
            shape.device,
        )?,
    };
    let batch = shape.batch.unwrap_or(1);
    let (past, seq) = (shape.past, shape.seq);
    let ids = match shape.seeded {
        // A seeded model's vocabulary is a placeholder: fixed ids spread over it.
        Some(_) => {
            let v = model.config().vocab_size as u64;
            (0..(past + seq) as u64)
                .map(|i| ((i * 7919 + 13) % v) as u32)
                .collect()
        }
        None => model
            .tokenizer()
            .encode(&PARAGRAPH.repeat((past + seq) / 20 + 2))?,
    };
    if batch == 0 || seq == 0 || ids.len() < past + seq {
        return Err(Error::invalid(
            "profile",
            format!(
                "smollm2 takes --batch ≥ 1 and 1 ≤ --past + --seq ≤ {} (got {batch} × ({past} + {seq}))",
                ids.len(),
            ),
        ));
    }
    let rows = |range: std::ops::Range<usize>| {
        let all: Vec<u32> = (0..batch)
            .flat_map(|_| ids[range.clone()].iter().copied())
            .collect();
        Tensor::from_vec(all, [batch, range.len()], shape.device)
    };
    // The prompt before the measured pass fills a cache once, outside the measurement;
    // every pass starts from its positions: the cache is cut back to them (its buffers,
    // with room for the pass, are kept; the pass's positions are written over in place).
    let mut cache = model.new_cache();
    cache.reserve(past + seq);
    if past > 0 {
        model.forward(&rows(0..past)?, &mut cache)?;
    }
    let new = rows(past..past + seq)?;
    let (_, ledger, walls) = best_of(shape, || {
        cache.truncate(past);
        model.forward(&new, &mut cache)
    })?;
    let mut facts = serde_json::Map::new();
    facts.insert("batch".into(), batch.into());
    facts.insert("seq".into(), seq.into());
    facts.insert("past".into(), past.into());
    let pass = match (past, seq) {
        (0, _) => "prefill (causal)",
        (_, 1) => "decode step (one token after the cached ones)",
        _ => "prefill after cached tokens (causal)",
    };
    facts.insert("pass".into(), pass.into());
    facts.insert("parameters".into(), model.num_params().into());
    Ok(Measured {
        ledger,
        pass_wall_s: walls,
        examples: batch,
        facts,
        analytic_contraction_fpo: Some(model.analytic_fpo(batch, seq, past)),
        skipped_note: Some(format!(
            "causal mask: {} (query, key) pairs, over all layers and heads, are never computed, 4·d FPO each",
            model.config().causal_skipped_pairs(batch, seq)
        )),
    })
}

/// golden.py's synthetic image batch: element i (row-major) is sin(0.001·i).
pub fn synthetic_images(batch: usize) -> Result<Tensor> {
    let n = batch * 3 * 224 * 224;
    let data: Vec<f32> = (0..n).map(|i| ((i as f64) * 0.001).sin() as f32).collect();
    Tensor::from_vec(data, [batch, 3, 224, 224], Device::Cpu)
}

fn mobilenet(shape: &Shape) -> Result<Measured> {
    let model = MobileNetV2::load_on(
        tally::models::cache_dir().join(MOBILENET_DIR),
        shape.dtype,
        shape.device,
    )?;
    let batch = shape.batch.unwrap_or(1);
    if batch == 0 {
        return Err(Error::invalid("profile", "--batch must be at least 1"));
    }
    let x = synthetic_images(batch)?
        .to_dtype(shape.dtype)?
        .to_device(shape.device)?;
    let (_, ledger, walls) = best_of(shape, || model.forward(&x))?;
    let mut facts = serde_json::Map::new();
    facts.insert("batch".into(), batch.into());
    facts.insert("image".into(), "3×224×224 synthetic".into());
    facts.insert("parameters".into(), model.num_params().into());
    Ok(Measured {
        ledger,
        pass_wall_s: walls,
        examples: batch,
        facts,
        analytic_contraction_fpo: Some(model.contraction_fpo(batch, 224, 224)),
        skipped_note: None,
    })
}

/// Embeds `texts` with MiniLM: the embeddings (b, 384), the ledger and the parameter count.
pub fn embed(texts: &[&str], dtype: DType) -> Result<(Tensor, Ledger, usize)> {
    let dir = tally::models::cache_dir().join(MINILM_DIR);
    let model = Bert::load(&dir, dtype)?;
    let (emb, ledger) = try_measure(|| model.embed(texts))?;
    Ok((emb, ledger, model.num_params()))
}
