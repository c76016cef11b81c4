//! `tally profile`: run a model warm, measure it, print per-op and per-layer tables, and
//! optionally write the versioned JSON report, the same report as Markdown, and a Chrome
//! trace. Energy is read around the whole measurement where RAPL allows, and marked not
//! measured (with why) elsewhere.

use std::path::PathBuf;

use tally::core::report::Profile;
use tally::core::trace::Trace;
use tally::core::Result;

use crate::doc::Doc;
use crate::table;
use crate::workload::RunArgs;

/// Options of `tally profile`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Write the report as JSON (schema `tally.profile/1`, see docs/profile-schema.md).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the kept pass as a Chrome trace-event file (Perfetto, chrome://tracing): one
    /// event per kernel call with its FPO and bytes (see docs/profile-schema.md).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Write the same report as Markdown.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let dtype = args.run.dtype()?;
    let (m, energy) = args.run.measure()?;
    let mut run = m.facts.clone();
    run.insert("dtype".into(), dtype.name().into());
    run.insert("threads".into(), tally::num_threads().into());
    run.insert("device".into(), args.run.shape()?.device.to_string().into());
    run.insert("repeat".into(), args.run.repeat.into());
    let mut report = Profile::from_ledger(args.run.model.name(), &m.ledger, 2, run.clone());
    // Energy covers the whole measurement (load, warm-up and every pass), not the kept pass.
    report.run.insert(
        "energy".into(),
        serde_json::to_value(&energy).unwrap_or_default(),
    );

    let facts: Vec<String> = run.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let mut doc = Doc::new(format!(
        "{}: {} (best of {} passes)",
        args.run.model.name(),
        facts.join(", "),
        args.run.repeat
    ));
    let table = |doc: &mut Doc, first: &str, rows| {
        let (header, body) = table::cost_rows(first, rows, &report.total);
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        doc.table(&header, body);
    };
    doc.heading("By op");
    table(&mut doc, "op", &report.ops);
    doc.heading("By scope");
    table(&mut doc, "scope", &report.scopes);
    doc.heading("Totals");
    let t = &report.total;
    doc.text(format!(
        "FPO {} executed, {} analytic; matmul/conv/attention-product FPO {} executed, {} dense \
         (what FlopCounterMode counts); {} MACs; {} special-function evaluations; {} bytes; {} in kernels",
        table::si(t.fpo as f64),
        table::si(t.fpo_analytic as f64),
        table::si(report.contraction_fpo as f64),
        table::si(report.contraction_fpo_analytic as f64),
        table::si(t.work.macs() as f64),
        table::si(t.work.special as f64),
        table::si(t.work.bytes() as f64),
        table::time(t.time_s),
    ));
    if let Some(formula) = m.analytic_contraction_fpo {
        let diff = report.contraction_fpo as i128 - formula as i128;
        let verdict = match (diff, &m.skipped_note) {
            (0, _) => "equal to the executed count".to_string(),
            (d, Some(why)) => format!("executed differs by {d}: {why}"),
            (d, None) => format!("executed differs by {d}"),
        };
        doc.text(format!(
            "model formula (matmul + attention products): {} FPO, {verdict}",
            table::si(formula as f64)
        ));
    }
    doc.text(format!(
        "per example: {} FPO, {} bytes",
        table::si(t.fpo as f64 / m.examples as f64),
        table::si(t.work.bytes() as f64 / m.examples as f64)
    ));
    doc.text(format!(
        "{} [window: load, warm-up and {} passes]",
        energy.summary(),
        args.run.repeat
    ));
    print!("{}", doc.terminal());
    println!();
    if let Some(path) = &args.markdown {
        crate::output::write_report(path, doc.markdown())?;
    }
    if let Some(path) = &args.json {
        crate::output::write_report(path, report.to_json()?)?;
    }
    if let Some(path) = &args.trace {
        crate::output::write_report(
            path,
            Trace::from_ledger(&m.ledger, std::process::id()).to_json()?,
        )?;
    }
    Ok(())
}
