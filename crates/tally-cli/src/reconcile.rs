//! `tally reconcile`: measure a model, set each op class against this machine's calibrated
//! roofline (floor, efficiency, bound), flag executed/analytic disagreements, state energy
//! (and share it out to classes by time when asked), and optionally estimate a datasheet
//! target, plot the roofline and the FPO-against-wall-clock timeline (SVG), and write the
//! report as Markdown and as `tally.reconcile/1` JSON (docs/reconcile-schema.md).

use std::path::PathBuf;

use serde_json::{json, Value};
use tally::core::{Error, Result};
use tally::hw::roofline::{self, Ceilings, ClassRow};
use tally::hw::{targets, Effort, HardwareProfile, Target};

use tally_energy::{Apportioned, EnergyReading};

use crate::doc::Doc;
use crate::table::{si, time};
use crate::workload::RunArgs;

/// The `schema` tag of the JSON report.
pub const SCHEMA: &str = "tally.reconcile/1";

/// Options of `tally reconcile`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Write a roofline plot (SVG): each op class on the calibrated ceilings.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write the report as JSON (schema `tally.reconcile/1`, see docs/reconcile-schema.md).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Add each class's least time on a described target (datasheet estimate): h100-sxm, ...
    #[arg(long)]
    target: Option<String>,
    /// Write the same report as Markdown.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write cumulative executed FPO against wall-clock time (SVG), one colour per op class.
    #[arg(long)]
    fpo_svg: Option<PathBuf>,
    /// A stated power, watts: energy is then *modelled* as W × measured time (never measured).
    #[arg(long)]
    watts: Option<f64>,
    /// Share the energy out to op classes by their kernel time (labelled apportioned).
    #[arg(long)]
    apportion_energy: bool,
}

/// A figure with its unit and source, as the JSON states every number.
fn q(value: impl Into<Value>, unit: &str, source: &str) -> Value {
    json!({ "value": value.into(), "unit": unit, "source": source })
}

/// The saved hardware profile, or a quick in-process calibration (said so in the note).
fn hardware() -> (HardwareProfile, String) {
    let path = HardwareProfile::default_path();
    match HardwareProfile::load(&path) {
        Ok(p) => {
            let note = format!("calibrated profile {}", path.display());
            (p, note)
        }
        Err(e) => {
            let p = HardwareProfile::measure(&Effort::quick(), |_| {});
            let note = format!(
                "no saved hardware profile ({e}); ran a QUICK calibration now (measured, \
                 but not ceilings: run `tally calibrate --save` for real ones)"
            );
            (p, note)
        }
    }
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let dtype = args.run.dtype()?;
    let target: Option<Target> = args.target.as_deref().map(targets::target).transpose()?;
    if args.watts.is_some_and(|w| !w.is_finite() || w < 0.0) {
        return Err(Error::invalid("reconcile", "--watts must be ≥ 0"));
    }
    let (m, measured_energy) = args.run.measure()?;
    // A stated power replaces the reading (labelled modelled), as `tally price` does.
    let energy = match args.watts {
        Some(w) => EnergyReading::modelled(
            w,
            std::time::Duration::from_secs_f64(measured_energy.window_s),
            measured_energy.repeats,
        ),
        None => measured_energy,
    };
    let threads = tally::num_threads();
    let (hw, hw_note) = hardware();
    let c = Ceilings::from_profile(&hw, dtype, threads)?;
    let (rows, total) = roofline::by_class(&m.ledger, &c);
    let disagreements = roofline::disagreements(&m.ledger);
    let estimate = |r: &ClassRow| {
        target
            .as_ref()
            .map(|t| tally::hw::roofline_time(t, r.fpo as f64, r.bytes as f64, dtype.name()))
    };
    // Energy shared out to classes by kernel time, only when asked.
    let shares: Option<Option<Apportioned>> = args.apportion_energy.then(|| {
        let times: Vec<f64> = rows.iter().chain([&total]).map(|r| r.time_s).collect();
        energy.apportion(&times)
    });

    let facts: Vec<String> = m.facts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let mut doc = Doc::new(format!(
        "{}: {}, dtype {}, threads {threads} (best of {} passes)",
        args.run.model.name(),
        facts.join(", "),
        dtype.name(),
        args.run.repeat
    ));
    doc.text(format!(
        "ceilings: {:.1} GFLOP/s ({} peak) and {:.1} GB/s ({} bandwidth) at {} threads, {} · {}{}",
        c.peak_gflops,
        c.peak_kernel,
        c.bandwidth_gbs,
        c.bandwidth_kernel,
        c.threads,
        hw.cpu_model,
        hw_note,
        if c.note.is_empty() {
            String::new()
        } else {
            format!(" · {}", c.note)
        }
    ));
    let mut header = vec![
        "class",
        "calls",
        "FPO exec",
        "FPO analytic",
        "bytes",
        "FPO/B",
        "time",
        "GFLOP/s",
        "GB/s",
        "floor",
        "efficiency",
        "bound",
    ];
    let tcol = target.as_ref().map(|t| format!("time at best on {}", t.id));
    if let Some(h) = &tcol {
        header.push(h);
    }
    if shares.is_some() {
        header.push("energy (apportioned)");
    }
    let mut body = Vec::new();
    for (i, r) in rows.iter().chain(std::iter::once(&total)).enumerate() {
        let mut cells = vec![
            r.name.clone(),
            r.calls.to_string(),
            si(r.fpo as f64),
            si(r.fpo_analytic as f64),
            si(r.bytes as f64),
            format!("{:.2}", r.intensity()),
            time(r.time_s),
            format!("{:.2}", r.gflops()),
            format!("{:.2}", r.gbytes_per_s()),
            time(r.floor.seconds),
            format!("{:.1}%", 100.0 * r.efficiency()),
            r.floor.bound.to_string(),
        ];
        match estimate(r) {
            Some(Ok(e)) => cells.push(format!("{} ({})", time(e.seconds), e.bound)),
            Some(Err(_)) => cells.push("no datasheet peak".into()),
            None => {}
        }
        match &shares {
            Some(Some(a)) => cells.push(format!("{} J", sci(a.joules[i]))),
            Some(None) => cells.push("not measured".into()),
            None => {}
        }
        body.push(cells);
    }
    doc.heading("Op classes against the calibrated roofline");
    doc.table(&header, body);
    doc.text(format!(
        "floor = max(FPO / {:.1} GFLOP/s, bytes / {:.1} GB/s) (calibrated); efficiency = floor / measured time",
        c.peak_gflops, c.bandwidth_gbs
    ));
    let over: Vec<&str> = rows
        .iter()
        .filter(|r| r.efficiency() > 1.0)
        .map(|r| r.name.as_str())
        .collect();
    if !over.is_empty() {
        doc.text(format!(
            "efficiency above 100% ({}): the operands stayed in cache, which is faster than the \
             DRAM bandwidth the floor assumes; the memory floor is an upper bound there",
            over.join(", ")
        ));
    }
    if let Some(t) = &target {
        doc.text(format!(
            "time at best on {}: a datasheet estimate ({}), not measured",
            t.id, t.source
        ));
    }
    doc.heading("Executed against analytic FPO");
    if disagreements.is_empty() {
        doc.text("executed = analytic for every record");
    }
    for d in &disagreements {
        doc.text(format!(
            "disagreement: {} × {}: executed {} FPO, analytic {} ({}): {}",
            d.calls,
            d.op,
            si(d.fpo_executed as f64),
            si(d.fpo_analytic as f64),
            d.fpo_executed as i128 - d.fpo_analytic as i128,
            d.reason
        ));
    }
    doc.heading("Energy");
    doc.text(format!(
        "{} [window: load, warm-up and {} passes]",
        energy.summary(),
        args.run.repeat
    ));
    match &shares {
        Some(Some(a)) => doc.text(format!(
            "energy apportioned to classes by kernel time ({}): {:.1} W, the window's average, \
             × each class's time; a share, not a per-kernel measurement",
            a.source, a.watts
        )),
        Some(None) => doc.text(
            "energy not apportioned: nothing was measured (--watts W gives a modelled estimate)",
        ),
        None => {}
    }
    print!("{}", doc.terminal());
    println!();
    if let Some(path) = &args.markdown {
        crate::output::write_report(path, doc.markdown())?;
    }
    if let Some(path) = &args.fpo_svg {
        let calls: Vec<crate::plot::Call> = m
            .ledger
            .records()
            .iter()
            .map(|r| crate::plot::Call {
                class: roofline::op_class(r.op).name(),
                start_s: r.start_ns as f64 * 1e-9,
                seconds: r.elapsed_ns as f64 * 1e-9,
                fpo: r.work.fpo() as f64,
            })
            .collect();
        let title = format!(
            "{}: FPO against wall-clock ({} threads)",
            args.run.model.name(),
            c.threads
        );
        crate::plot::fpo_timeline(path, &title, c.peak_gflops, &calls)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.svg {
        let points: Vec<crate::plot::RoofPoint> = rows
            .iter()
            .map(|r| crate::plot::RoofPoint {
                label: r.name.clone(),
                intensity: r.intensity(),
                gflops: r.gflops(),
            })
            .collect();
        let title = format!(
            "{} on {} ({} threads)",
            args.run.model.name(),
            hw.cpu_model,
            c.threads
        );
        crate::plot::roofline(path, &title, &c, &points)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let row = |r: &ClassRow| {
            let mut v = json!({
                "name": r.name,
                "ops": r.ops,
                "calls": q(r.calls, "count", "executed"),
                "fpo": q(r.fpo, "FPO", "executed"),
                "fpo_analytic": q(r.fpo_analytic, "FPO", "analytic"),
                "bytes": q(r.bytes, "B", "executed"),
                "intensity": q(r.intensity(), "FPO/B", "executed"),
                "time_s": q(r.time_s, "s", "measured"),
                "gflops": q(r.gflops(), "GFLOP/s", "measured"),
                "gbytes_per_s": q(r.gbytes_per_s(), "GB/s", "measured"),
                "floor_s": q(r.floor.seconds, "s", "calibrated"),
                "floor_compute_s": q(r.floor.compute_s, "s", "calibrated"),
                "floor_memory_s": q(r.floor.memory_s, "s", "calibrated"),
                "efficiency": q(r.efficiency(), "ratio", "calibrated"),
                "bound": r.floor.bound,
            });
            if let Some(Ok(e)) = estimate(r) {
                v["target_time_s"] = q(e.seconds, "s", "datasheet estimate");
                v["target_bound"] = e.bound.into();
            }
            v
        };
        let with_energy = |mut v: Value, i: usize| {
            match &shares {
                Some(Some(a)) => v["energy_j"] = q(a.joules[i], "J", &a.source),
                Some(None) => v["energy_j"] = q(Value::Null, "J", "not_measured"),
                None => {}
            }
            v
        };
        let energy_source = energy.method.name();
        let report = json!({
            "schema": SCHEMA,
            "model": args.run.model.name(),
            "run": {
                "facts": m.facts,
                "dtype": dtype.name(),
                "threads": threads,
                "repeat": args.run.repeat,
                "examples": m.examples,
            },
            "hardware": {
                "cpu_model": hw.cpu_model,
                "quick": hw.quick,
                "note": hw_note,
                "threads": c.threads,
                "peak": q(c.peak_gflops, "GFLOP/s", "calibrated"),
                "peak_kernel": c.peak_kernel,
                "bandwidth": q(c.bandwidth_gbs, "GB/s", "calibrated"),
                "bandwidth_kernel": c.bandwidth_kernel,
                "ceilings_note": c.note,
            },
            "target": target.as_ref().map(|t| json!({
                "id": t.id, "name": t.name, "source": t.source,
                "label": "datasheet estimate: roofline floor, not measured",
            })),
            "classes": rows.iter().enumerate().map(|(i, r)| with_energy(row(r), i)).collect::<Vec<_>>(),
            "total": with_energy(row(&total), rows.len()),
            "disagreements": disagreements,
            "energy": {
                "method": energy_source,
                "joules": q(energy.joules, "J", energy_source),
                "window_s": q(energy.window_s, "s", "measured"),
                "too_short": energy.too_short,
                "repeats": energy.repeats,
                "note": energy.note,
            },
        });
        let text = serde_json::to_string_pretty(&report).map_err(|source| Error::Json {
            what: "reconcile report".into(),
            source,
        })?;
        crate::output::write_report(path, text + "\n")?;
    }
    Ok(())
}

/// `1.23e-4`: energies span many orders of magnitude.
fn sci(v: f64) -> String {
    format!("{v:.3e}")
}
