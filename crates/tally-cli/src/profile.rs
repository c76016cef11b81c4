//! `tally profile`: run a shipped model once warm, measure it, print per-op and
//! per-layer tables, and optionally write the versioned JSON report.

use std::path::PathBuf;

use tally::core::report::Profile;
use tally::core::{try_measure, DType, Device, Error, Ledger, Result};
use tally::models::digits::{Digits, DigitsMlp};
use tally::Tensor;

use crate::table;

/// Options of `tally profile`.
#[derive(clap::Args)]
pub struct Args {
    /// Model to run (shipped: `digits-mlp`).
    #[arg(default_value = "digits-mlp")]
    model: String,
    /// Images per forward pass (default: the whole held-out split, 360).
    #[arg(long)]
    batch: Option<usize>,
    /// Weight and activation dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Forward passes to measure; the report keeps the one with the least kernel time.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Write the report as JSON (schema `tally.profile/1`, see docs/profile-schema.md).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let dtype = DType::parse(&args.dtype)
        .filter(|d| d.is_float())
        .ok_or_else(|| {
            Error::invalid(
                "profile",
                format!("--dtype {}: expected f32, bf16 or f16", args.dtype),
            )
        })?;
    if args.model != "digits-mlp" {
        return Err(Error::invalid(
            "profile",
            format!("unknown model `{}` (shipped: digits-mlp)", args.model),
        ));
    }
    let dir = tally::models::models_dir().join("digits");
    let model = DigitsMlp::load(&dir.join("mlp.safetensors"), dtype)?;
    let data = Digits::load(&dir.join("digits.csv.gz"))?.held_out();
    let data = match args.batch {
        Some(0) => return Err(Error::invalid("profile", "--batch must be at least 1")),
        Some(b) => data.take(b),
        None => data,
    };
    let x = data.tensor(Device::Cpu)?.to_dtype(dtype)?;
    if args.repeat == 0 {
        return Err(Error::invalid("profile", "--repeat must be at least 1"));
    }
    model.forward(&x)?; // warm-up: page in weights, spin up threads
    let mut best: Option<(Tensor, Ledger)> = None;
    for _ in 0..args.repeat {
        let (logits, ledger) = try_measure(|| model.forward(&x))?;
        let faster = best
            .as_ref()
            .is_none_or(|(_, b)| ledger.total().elapsed_ns < b.total().elapsed_ns);
        if faster {
            best = Some((logits, ledger));
        }
    }
    let (logits, ledger) = best.ok_or_else(|| Error::invalid("profile", "nothing measured"))?;
    let accuracy = DigitsMlp::accuracy(&logits, &data.labels)?;

    let mut run = serde_json::Map::new();
    run.insert("batch".into(), data.len().into());
    run.insert("dtype".into(), dtype.name().into());
    run.insert("threads".into(), tally::num_threads().into());
    run.insert("parameters".into(), model.num_params().into());
    run.insert("accuracy".into(), accuracy.into());
    run.insert("repeat".into(), args.repeat.into());
    let report = Profile::from_ledger(&args.model, &ledger, 2, run);

    println!(
        "{}: batch {}, {}, {} threads, {} parameters, held-out accuracy {:.2}% (best of {} runs)\n",
        args.model,
        data.len(),
        dtype,
        tally::num_threads(),
        model.num_params(),
        100.0 * accuracy,
        args.repeat
    );
    println!("{}\n", table::cost_table("op", &report.ops, &report.total));
    println!(
        "{}\n",
        table::cost_table("scope", &report.scopes, &report.total)
    );
    let t = &report.total;
    println!(
        "FPO {} executed, {} analytic; matmul/conv FPO {} (what FlopCounterMode counts); \
         {} MACs; {} special-function evaluations; {} bytes; {} in kernels",
        table::si(t.fpo as f64),
        table::si(t.fpo_analytic as f64),
        table::si(report.contraction_fpo as f64),
        table::si(t.work.macs() as f64),
        table::si(t.work.special as f64),
        table::si(t.work.bytes() as f64),
        table::time(t.time_s),
    );
    println!(
        "per example: {} FPO, {} bytes",
        table::si(t.fpo as f64 / data.len() as f64),
        table::si(t.work.bytes() as f64 / data.len() as f64)
    );
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json()?).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
