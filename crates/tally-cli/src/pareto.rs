//! `tally pareto`: the digits width family, each model's held-out accuracy against the FPO
//! per example its kernels executed, as a table and an SVG chart (the Green AI paper's
//! Figure 4 in miniature).

use std::path::PathBuf;

use tally::core::{try_measure, DType, Device, Result};
use tally::models::digits::{family, family_dir, Digits, DigitsMlp};

use crate::{plot, table};

/// Options of `tally pareto`.
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the chart.
    #[arg(long, default_value = "digits-pareto.svg")]
    out: PathBuf,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let models = tally::models::models_dir();
    let dir = family_dir(&models);
    let members = family(&dir)?;
    let data = Digits::load(&models.join("digits/digits.csv.gz"))?.held_out();
    let x = data.tensor(Device::Cpu)?;
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for m in &members {
        let model = DigitsMlp::load(&dir.join(&m.file), DType::F32)?;
        let (logits, ledger) = try_measure(|| model.forward(&x))?;
        let accuracy = DigitsMlp::accuracy(&logits, &data.labels)?;
        let fpo = ledger.total().work.fpo() as f64 / data.len() as f64;
        let widths = m
            .hidden
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("×");
        rows.push(vec![
            widths.clone(),
            model.num_params().to_string(),
            table::si(fpo),
            format!("{:.2}%", 100.0 * accuracy),
            format!("{:.2}%", 100.0 * m.test_accuracy),
        ]);
        points.push(plot::Point {
            label: format!("w={widths}"),
            fpo,
            accuracy,
        });
    }
    println!(
        "{}",
        table::render(
            &[
                "hidden",
                "params",
                "FPO/example",
                "accuracy",
                "numpy accuracy"
            ],
            &rows
        )
    );
    plot::accuracy_vs_fpo(
        &args.out,
        &format!(
            "digits MLPs: accuracy against FPO per example ({} held-out images)",
            data.len()
        ),
        &points,
    )?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}
