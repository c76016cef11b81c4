//! `tally calibrate`: measure this machine's ceilings (FMA peak per ISA, bf16 dot peak,
//! STREAM copy/triad bandwidth, per thread count), print them and save the profile.

use std::path::PathBuf;

use tally::hw::{Effort, HardwareProfile};

use crate::table;

/// Arguments of `tally calibrate`.
#[derive(clap::Args)]
pub struct Args {
    /// Save the profile to `${TALLY_CACHE:-~/.cache/tally}/hardware.json`.
    #[arg(long)]
    save: bool,
    /// Also write the profile (JSON) to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// A smoke run in well under a second (tiny buffers and loops): not ceilings.
    #[arg(long)]
    quick: bool,
}

/// Measures, prints the table, and writes the JSON asked for.
pub fn run(args: &Args) -> tally::Result<()> {
    let effort = if args.quick {
        Effort::quick()
    } else {
        Effort::full()
    };
    let profile = HardwareProfile::measure(&effort, |_| {});
    println!("{}", render(&profile));
    if let Some(path) = &args.json {
        profile.save(path)?;
        println!("wrote {}", path.display());
    }
    if args.save {
        let path = HardwareProfile::default_path();
        profile.save(&path)?;
        println!("saved {}", path.display());
    }
    Ok(())
}

/// The profile as a terminal table, with the methods underneath.
fn render(p: &HardwareProfile) -> String {
    let rows: Vec<Vec<String>> = p
        .figures
        .iter()
        .map(|f| {
            vec![
                format!("{} {}", f.quantity, f.kernel),
                f.isa.clone(),
                f.threads.to_string(),
                format!("{:.1}", f.value),
                f.unit.clone(),
            ]
        })
        .collect();
    let mut out = format!(
        "{} · {} hardware threads · {}{}\n\n",
        p.cpu_model,
        p.cores,
        p.isa.join(" "),
        if p.quick {
            " · QUICK run: not ceilings"
        } else {
            ""
        }
    );
    out += &table::render(&["measured", "isa", "threads", "value", "unit"], &rows);
    out += "\nmethods:\n";
    let mut seen = Vec::new();
    for f in &p.figures {
        let key = (f.kernel.clone(), f.isa.clone());
        if !seen.contains(&key) {
            out += &format!("  {} {}: {}\n", f.kernel, f.isa, f.method);
            seen.push(key);
        }
    }
    for s in &p.skipped {
        out += &format!("  skipped {}: {}\n", s.what, s.reason);
    }
    out
}
