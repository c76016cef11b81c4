//! `tally run`: a model's answer on an input, and a one-screen cost summary.

use std::time::Instant;

use std::io::Write;

use tally::core::{try_measure, DType, Ledger, Result};
use tally::models::digits::{Digits, DigitsMlp};
use tally::models::llama::{Llama, Sampling, SMOLLM2_DIR};
use tally::models::mobilenet::{MobileNetV2, MOBILENET_DIR};
use tally::nn::WeightStore;
use tally::Device;

use crate::table;
use crate::workload::float_dtype;
use crate::workload::{self, Model};

/// Options of `tally run`.
#[derive(clap::Args)]
pub struct Args {
    /// Model to run.
    #[arg(value_enum, default_value = "digits-mlp")]
    model: Model,
    /// Inputs: texts for minilm (default: three sample sentences), a prompt for smollm2;
    /// digits-mlp classifies its 360 held-out images and mobilenet the shipped china.jpg.
    inputs: Vec<String>,
    /// Tokens to generate (smollm2).
    #[arg(long, default_value_t = 20)]
    max_tokens: usize,
    /// Weight and activation dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Run over a data set and end with the price tag: a digits CSV (gz or plain; `held-out`
    /// for the shipped held-out split) for digits-mlp, a text file (one sentence per line)
    /// for minilm.
    #[arg(long)]
    input: Option<String>,
    /// Inputs per batch with --input.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    knobs: crate::price::Knobs,
}

const SAMPLES: [&str; 3] = [
    "Tally counts every floating-point operation its kernels execute.",
    "The kernels tally the work they actually run.",
    "A cat sat on the mat.",
];

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let dtype = float_dtype(&args.dtype)?;
    if let Some(input) = &args.input {
        return crate::dataset::run(args.model, input, args.batch_size, dtype, &args.knobs);
    }
    let start = Instant::now();
    let heap_before = tally::cpu::heap::current();
    tally::cpu::heap::reset();
    let unit = match args.model {
        Model::DigitsMlp | Model::Mobilenet => "image",
        Model::Minilm => "sentence",
        Model::Smollm2 => "generated token",
    };
    let meter = tally_energy::EnergyMeter::detect();
    let (answered, energy) = meter.measure_energy(|| answer(args, dtype));
    let (ledger, examples, params) = answered?;
    let peak = tally::cpu::heap::peak().saturating_sub(heap_before);
    summary(
        &ledger,
        examples,
        unit,
        params,
        start.elapsed().as_secs_f64(),
        peak,
        &energy,
    );
    Ok(())
}

/// Loads the model, answers, prints the answer; returns the ledger, examples and parameters.
fn answer(args: &Args, dtype: DType) -> Result<(Ledger, usize, usize)> {
    Ok(match args.model {
        Model::DigitsMlp => {
            let dir = tally::models::models_dir().join("digits");
            let model = DigitsMlp::load(&dir.join("mlp.safetensors"), dtype)?;
            let data = Digits::load(&dir.join("digits.csv.gz"))?.held_out();
            let x = data.tensor(Device::Cpu)?.to_dtype(dtype)?;
            let (logits, ledger) = try_measure(|| model.forward(&x))?;
            let pred = logits.argmax(1, false)?.to_vec::<u32>()?;
            let right = pred
                .iter()
                .zip(&data.labels)
                .filter(|(p, l)| p == l)
                .count();
            println!(
                "first ten held-out images: predicted {:?}",
                &pred[..10.min(pred.len())]
            );
            println!(
                "                           labelled  {:?}",
                &data.labels[..10.min(pred.len())]
            );
            println!(
                "accuracy {right}/{} = {:.2}%\n",
                data.len(),
                100.0 * right as f64 / data.len() as f64
            );
            (ledger, data.len(), model.num_params())
        }
        Model::Minilm => {
            let texts: Vec<&str> = if args.inputs.is_empty() {
                SAMPLES.to_vec()
            } else {
                args.inputs.iter().map(String::as_str).collect()
            };
            let (emb, ledger, params) = workload::embed(&texts, dtype)?;
            let v = emb.to_f64_vec()?;
            let dim = emb.dims()[1];
            for (i, t) in texts.iter().enumerate() {
                let row = &v[i * dim..(i + 1) * dim];
                let head: Vec<String> = row[..6].iter().map(|x| format!("{x:+.4}")).collect();
                println!("[{i}] {t}\n    embedding ({dim}): [{}, …]", head.join(", "));
            }
            for i in 0..texts.len() {
                for j in i + 1..texts.len() {
                    let cos: f64 = (0..dim).map(|k| v[i * dim + k] * v[j * dim + k]).sum();
                    println!("cosine [{i}]·[{j}] = {cos:.4}");
                }
            }
            println!();
            (ledger, texts.len(), params)
        }
        Model::Smollm2 => {
            let prompt = if args.inputs.is_empty() {
                "The capital of France is".to_string()
            } else {
                args.inputs.join(" ")
            };
            let model = Llama::load(&tally::models::cache_dir().join(SMOLLM2_DIR), dtype)?;
            print!("{prompt}");
            let (ids, ledger) = try_measure(|| {
                model.generate(&prompt, args.max_tokens, Sampling::Greedy, |piece| {
                    print!("{piece}");
                    std::io::stdout().flush().ok();
                })
            })?;
            println!("\n\n({} tokens generated, greedy)\n", ids.len());
            (ledger, ids.len().max(1), model.num_params())
        }
        Model::Mobilenet => {
            let model = MobileNetV2::load(tally::models::cache_dir().join(MOBILENET_DIR), dtype)?;
            let path = tally::models::models_dir().join("mobilenet/china_224.safetensors");
            let image = WeightStore::open(&path)?.get("image", [3, 224, 224], DType::F32)?;
            let x = image.unsqueeze(0)?.to_dtype(dtype)?;
            let (top, ledger) = try_measure(|| model.classify(&x))?;
            println!("models/mobilenet/china_224.safetensors (torchvision's preprocessing of scikit-learn's china.jpg)");
            for (rank, (class, p)) in top.iter().enumerate() {
                println!("  top-{}: ImageNet class {class:>4}  p = {p:.4}", rank + 1);
            }
            println!("  (class 698 is \"palace\")\n");
            (ledger, 1, model.num_params())
        }
    })
}

fn summary(
    ledger: &Ledger,
    examples: usize,
    unit: &str,
    params: usize,
    wall_s: f64,
    peak: usize,
    energy: &tally_energy::EnergyReading,
) {
    let t = ledger.total();
    let disagree = ledger.disagreements().count();
    println!(
        "cost of this answer ({examples} {unit}{}):",
        if examples == 1 { "" } else { "s" }
    );
    println!(
        "  FPO        {} executed ({} per {unit}), {} by the analytic formulas{}",
        table::si(t.work.fpo() as f64),
        table::si(t.work.fpo() as f64 / examples as f64),
        table::si(t.analytic.fpo() as f64),
        if disagree > 0 {
            format!(" ({disagree} calls skipped masked work)")
        } else {
            String::new()
        }
    );
    println!(
        "  by kind    {} adds, {} muls, {} FMAs, {} special-function evaluations",
        table::si(t.work.add as f64),
        table::si(t.work.mul as f64),
        table::si(t.work.fma as f64),
        table::si(t.work.special as f64)
    );
    println!(
        "  bytes      {} read, {} written",
        table::si(t.work.bytes_read as f64),
        table::si(t.work.bytes_written as f64)
    );
    println!(
        "  time       {} in {} kernel calls, {} wall including loading",
        table::time(t.elapsed_ns as f64 * 1e-9),
        t.calls,
        table::time(wall_s)
    );
    println!("  parameters {} ({})", params, table::si(params as f64));
    // Read around loading and answering together (the window the line states).
    println!(
        "  {} [window: load and answer]",
        energy.summary().replacen("energy: ", "energy     ", 1)
    );
    println!(
        "  memory     peak heap {}B (weights, activations, and the input, from loading to answer)",
        table::si(peak as f64)
    );
}
