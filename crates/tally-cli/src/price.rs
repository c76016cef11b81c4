//! `tally price`: the price tag of Equation 1 of *Green AI* (`Cost ∝ E · D · H`) for a
//! model: one batch measured, its per-example cost derived, and totals for D examples
//! over H experiments in FPO, bytes, time, kWh, kg CO2e and money, each with its source.

use std::path::PathBuf;

use tally::core::{Error, Ledger, Result};
use tally_energy::{EnergyReading, Method};
use tally_price::{ExampleCost, ExampleEnergy, Figure, PriceTag, Source};

use crate::doc::Doc;
use crate::table;
use crate::workload::RunArgs;

/// Options of `tally price`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// D: examples in the data set.
    #[arg(long)]
    examples: u64,
    /// H: hyperparameter or model-selection experiments (runs over the data set).
    #[arg(long, default_value_t = 1)]
    experiments: u64,
    #[command(flatten)]
    knobs: Knobs,
    /// Write the price tag as JSON (schema `tally.price/1`, see docs/price-schema.md).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the price tag as Markdown.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// The user-given figures a price tag may use, shared with `tally run --input`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Knobs {
    /// A stated power, watts: energy is then *modelled* as W × time (never measured).
    #[arg(long)]
    pub watts: Option<f64>,
    /// Grid carbon intensity, g CO2e/kWh (default: 436, Ember's 2022 world average).
    #[arg(long)]
    pub grid_g_per_kwh: Option<f64>,
    /// Price of one kWh (any currency); needs energy.
    #[arg(long)]
    pub price_per_kwh: Option<f64>,
    /// Price of one hour of machine time (any currency); needs no energy.
    #[arg(long)]
    pub price_per_hour: Option<f64>,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let (m, reading) = args.run.measure()?;
    let title = format!(
        "{}: measured one batch of {} example(s); the price tag scales it to D = {} × H = {}",
        args.run.model.name(),
        m.examples,
        args.examples,
        args.experiments
    );
    let tag = price_tag(
        &m.ledger,
        m.examples,
        &reading,
        args.examples,
        args.experiments,
        &args.knobs,
    )?;
    let doc = tag_doc(title, &tag);
    print!("{}", doc.terminal());
    if let Some(path) = &args.markdown {
        crate::output::write_report(path, doc.markdown())?;
    }
    if let Some(path) = &args.json {
        write_json(path, &tag)?;
    }
    Ok(())
}

/// The price tag of `examples_run` examples recorded in `ledger` (energy read around them
/// in `reading`), scaled to `d` examples over `h` experiments.
pub fn price_tag(
    ledger: &Ledger,
    examples_run: usize,
    reading: &EnergyReading,
    d: u64,
    h: u64,
    knobs: &Knobs,
) -> Result<PriceTag> {
    if examples_run == 0 || d == 0 || h == 0 {
        return Err(Error::invalid(
            "price",
            "--examples, --experiments and the measured batch must be at least 1",
        ));
    }
    for (name, v) in [
        ("--watts", knobs.watts),
        ("--grid-g-per-kwh", knobs.grid_g_per_kwh),
        ("--price-per-kwh", knobs.price_per_kwh),
        ("--price-per-hour", knobs.price_per_hour),
    ] {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(Error::invalid("price", format!("{name} must be ≥ 0")));
        }
    }
    let t = ledger.total();
    let n = examples_run as f64;
    let seconds = t.elapsed_ns as f64 * 1e-9 / n;
    let energy = match (knobs.watts, reading.method, reading.watts()) {
        (Some(w), _, _) => ExampleEnergy::modelled(w, seconds),
        // Average power over the measuring window × this example's kernel time.
        (None, m @ (Method::Rapl | Method::Nvml), Some(w)) => ExampleEnergy::measured(
            w * seconds,
            format!(
                "{} ({}): {w:.1} W average over the window × kernel time",
                m.name(),
                reading.note
            ),
        ),
        _ => ExampleEnergy::not_measured(if reading.note.is_empty() {
            "no energy counter".to_string()
        } else {
            reading.note.clone()
        }),
    };
    let e = ExampleCost {
        fpo: t.work.fpo() as f64 / n,
        bytes: t.work.bytes() as f64 / n,
        seconds,
        energy,
    };
    Ok(
        PriceTag::new(e, d, h, knobs.grid_g_per_kwh, knobs.price_per_kwh)
            .with_price_per_hour(knobs.price_per_hour),
    )
}

fn source(s: Source) -> &'static str {
    match s {
        Source::Executed => "executed",
        Source::Measured => "measured",
        Source::Modelled => "modelled",
        Source::UserGiven => "user-given",
        Source::Default => "default",
    }
}

fn cell(f: Option<&Figure>, fmt: impl Fn(f64) -> String) -> String {
    f.map_or("—".into(), |f| fmt(f.value))
}

/// The price tag as a report: a table with each row's unit and source, then where each
/// figure came from.
pub fn tag_doc(title: String, tag: &PriceTag) -> Doc {
    let mut doc = Doc::new(title);
    let [one, data, all] = &tag.totals;
    let header = [
        "price tag (E·D·H)",
        "per example",
        &format!("dataset (D={})", tag.examples),
        &format!("all (H={})", tag.experiments),
        "source",
    ];
    type Pick = fn(&tally_price::Totals) -> Option<&Figure>;
    type Fmt<'a> = &'a dyn Fn(f64) -> String;
    let sci = |v: f64| format!("{v:.4e}");
    let rows: [(&str, Pick, Fmt); 8] = [
        ("FPO", |t| Some(&t.fpo), &|v| table::si(v)),
        ("bytes", |t| Some(&t.bytes), &|v| {
            format!("{}B", table::si(v))
        }),
        ("time", |t| Some(&t.time), &table::time),
        ("energy (J)", |t| t.energy_j.as_ref(), &sci),
        ("energy (kWh)", |t| t.energy_kwh.as_ref(), &sci),
        ("CO2e (kg)", |t| t.co2e_kg.as_ref(), &sci),
        ("money, energy", |t| t.money_energy.as_ref(), &sci),
        ("money, time", |t| t.money_time.as_ref(), &sci),
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, pick, fmt)| {
            vec![
                name.to_string(),
                cell(pick(one), fmt),
                cell(pick(data), fmt),
                cell(pick(all), fmt),
                pick(all).map_or("—".into(), |f| source(f.source).to_string()),
            ]
        })
        .collect();
    doc.table(&header, body);
    let en = &tag.per_example.energy;
    match en.method {
        Method::NotMeasured => doc.text(format!(
            "energy: not measured ({}); CO2e and energy cost need energy (--watts W gives a modelled estimate)",
            en.note
        )),
        Method::Modelled => doc.text(format!("energy: modelled ({}), not measured", en.note)),
        Method::Rapl | Method::Nvml => doc.text(format!("energy: measured ({})", en.note)),
    }
    doc.text(format!(
        "grid: {} g CO2e/kWh ({}: {})",
        tag.grid_g_per_kwh.value,
        source(tag.grid_g_per_kwh.source),
        tag.grid_source
    ));
    if let Some(p) = &tag.price_per_kwh {
        doc.text(format!("price per kWh: {} (user-given)", p.value));
    }
    if let Some(p) = &tag.price_per_hour {
        doc.text(format!(
            "price per hour of machine time: {} (user-given)",
            p.value
        ));
    }
    doc.text("time is summed kernel time per example, measured; FPO and bytes are executed counts");
    doc
}

/// Writes the tag as JSON (`tally.price/1`).
pub fn write_json(path: &std::path::Path, tag: &PriceTag) -> Result<()> {
    let text = serde_json::to_string_pretty(tag)
        .map_err(|e| Error::invalid("price", format!("JSON: {e}")))?;
    crate::output::write_report(path, text)
}
