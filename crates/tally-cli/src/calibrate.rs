//! `tally calibrate`: measure this machine's ceilings (FMA peak per ISA, bf16 dot peak,
//! STREAM copy/triad and read-only bandwidth, per thread count), print them and save the profile.

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
    /// Measure a GPU instead (cuda or cuda:N): cuBLAS products per dtype and a
    /// device-to-device copy; `--save` writes `hardware-cuda<N>.json` beside the CPU's.
    #[arg(long)]
    device: Option<String>,
}

/// Measures, prints the table, and writes the JSON asked for.
pub fn run(args: &Args) -> tally::Result<()> {
    if let Some(d) = &args.device {
        match d.parse::<tally::core::Device>()? {
            tally::core::Device::Cuda(n) => return gpu(args, n),
            tally::core::Device::Cpu => {}
        }
    }
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

/// The schema tag of a GPU's ceilings file.
pub const GPU_SCHEMA: &str = "tally.gpu-ceilings/1";

/// Where `--save` puts GPU n's ceilings.
pub fn gpu_ceilings_path(n: usize) -> PathBuf {
    tally::models::cache_dir().join(format!("hardware-cuda{n}.json"))
}

/// `tally calibrate --device cuda:n`.
fn gpu(args: &Args, n: usize) -> tally::Result<()> {
    use tally_cuda::calibrate::{calibrate, GpuEffort};
    let dev = tally_cuda::CudaDevice::get(n)?;
    let effort = if args.quick {
        GpuEffort::quick()
    } else {
        GpuEffort::full()
    };
    let ceilings = calibrate(&dev, effort)?;
    let rows: Vec<Vec<String>> = ceilings
        .iter()
        .map(|c| {
            vec![
                format!("{} {}", c.quantity, c.kernel),
                format!("{:.1}", c.value),
                c.unit.to_string(),
            ]
        })
        .collect();
    println!(
        "cuda:{n} · {} · {} · {} SMs{}\n",
        dev.name(),
        dev.arch(),
        dev.sm_count(),
        if args.quick {
            " · QUICK run: not ceilings"
        } else {
            ""
        }
    );
    println!("{}", table::render(&["measured", "value", "unit"], &rows));
    for c in &ceilings {
        println!("  {}: {}", c.kernel, c.method);
    }
    let json = serde_json::json!({
        "schema": GPU_SCHEMA,
        "device": format!("cuda:{n}"),
        "name": dev.name(),
        "arch": dev.arch().to_string(),
        "sm_count": dev.sm_count(),
        "quick": args.quick,
        "ceilings": ceilings.iter().map(|c| serde_json::json!({
            "quantity": c.quantity,
            "kernel": c.kernel,
            "value": c.value,
            "unit": c.unit,
            "method": c.method,
        })).collect::<Vec<_>>(),
    });
    let write = |path: &PathBuf| -> tally::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| tally::core::Error::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let text = serde_json::to_string_pretty(&json).expect("JSON of plain values");
        std::fs::write(path, text).map_err(|e| tally::core::Error::Io {
            path: path.clone(),
            source: e,
        })?;
        println!("wrote {}", path.display());
        Ok(())
    };
    if let Some(path) = &args.json {
        write(path)?;
    }
    if args.save {
        write(&gpu_ceilings_path(n))?;
    }
    Ok(())
}
