//! `tally run NAME --input FILE`: a model over a whole data set in batches, with a progress
//! bar (throughput and running FPO), ending with the price tag (D = inputs, H = 1).

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use tally::core::{try_measure, DType, Device, Error, Ledger, Result};
use tally::models::bert::{Bert, MINILM_DIR};
use tally::models::digits::{Digits, DigitsMlp, PIXELS};
use tally::Tensor;
use tally_energy::EnergyMeter;

use crate::price::{self, Knobs};
use crate::table;
use crate::workload::Model;

/// `--input held-out`: the shipped digits data set's held-out split.
pub const HELD_OUT: &str = "held-out";

/// Runs `model` over every input in `input`, `batch` at a time, and prints the price tag.
pub fn run(model: Model, input: &str, batch: usize, dtype: DType, knobs: &Knobs) -> Result<()> {
    if batch == 0 {
        return Err(Error::invalid("run", "--batch-size must be at least 1"));
    }
    let meter = EnergyMeter::detect();
    let (out, reading) = meter.measure_energy(|| match model {
        Model::DigitsMlp => digits(input, batch, dtype),
        Model::Minilm => minilm(input, batch, dtype),
        _ => Err(Error::invalid(
            "run",
            format!(
                "--input takes digits-mlp (a digits CSV) or minilm (a text file); not {}",
                model.name()
            ),
        )),
    });
    let (ledger, n) = out?;
    println!();
    let tag = price::price_tag(&ledger, n, &reading, n as u64, 1, knobs)?;
    let title = format!("{}: the price tag of this run ({n} examples)", model.name());
    print!("{}", price::tag_doc(title, &tag).terminal());
    Ok(())
}

fn bar(n: usize, unit: &str) -> ProgressBar {
    let pb = ProgressBar::new(n as u64);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit}s  {{per_sec}}  {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style);
    }
    pb
}

/// Runs `step` on each batch `[start, end)` of `n` inputs, with the ledger of each kept.
fn batches(
    n: usize,
    batch: usize,
    unit: &str,
    mut step: impl FnMut(usize, usize) -> Result<()>,
) -> Result<Ledger> {
    let pb = bar(n, unit);
    let mut ledger = Ledger::default();
    let mut fpo = 0u64;
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let ((), l) = try_measure(|| step(start, end))?;
        fpo += l.total().work.fpo();
        ledger.extend(l);
        pb.set_message(format!("{}FPO executed", table::si(fpo as f64)));
        pb.inc((end - start) as u64);
    }
    pb.finish();
    Ok(ledger)
}

fn digits(input: &str, batch: usize, dtype: DType) -> Result<(Ledger, usize)> {
    let dir = tally::models::models_dir().join("digits");
    let model = DigitsMlp::load(&dir.join("mlp.safetensors"), dtype)?;
    let data = if input == HELD_OUT {
        Digits::load(&dir.join("digits.csv.gz"))?.held_out()
    } else {
        Digits::load(Path::new(input))?
    };
    let n = data.len();
    if n == 0 {
        return Err(Error::invalid("run", format!("{input}: no images")));
    }
    let mut right = 0;
    let ledger = batches(n, batch, "image", |s, e| {
        let x = Tensor::from_slice(
            &data.pixels[s * PIXELS..e * PIXELS],
            [e - s, PIXELS],
            Device::Cpu,
        )?
        .to_dtype(dtype)?;
        let pred = model.forward(&x)?.argmax(1, false)?.to_vec::<u32>()?;
        right += pred
            .iter()
            .zip(&data.labels[s..e])
            .filter(|(p, l)| p == l)
            .count();
        Ok(())
    })?;
    println!(
        "{n} images from {input}: accuracy {right}/{n} = {:.2}%",
        100.0 * right as f64 / n as f64
    );
    Ok((ledger, n))
}

fn minilm(input: &str, batch: usize, dtype: DType) -> Result<(Ledger, usize)> {
    let text = std::fs::read_to_string(input).map_err(|source| Error::Io {
        path: input.into(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(Error::invalid("run", format!("{input}: no sentences")));
    }
    let model = Bert::load(&tally::models::cache_dir().join(MINILM_DIR), dtype)?;
    let ledger = batches(lines.len(), batch, "sentence", |s, e| {
        model.embed(&lines[s..e]).map(|_| ())
    })?;
    println!("{} sentences from {input} embedded", lines.len());
    Ok((ledger, lines.len()))
}
