//! `tally kernels`: compile every `kernels/*.cu` file to PTX with NVRTC into the PTX cache
//! (or find it there), so that no later process on a GPU pays for compiling. Needs NVRTC,
//! not a GPU: `gpu/build.sh` runs it here and ships the cache with the bundle.

use std::path::PathBuf;
use std::time::Instant;

use tally::core::{Error, Result};
use tally_cuda::{cached_ptx, ptx_cache_dir, Arch, PtxOrigin, KERNELS};

use crate::doc::Doc;

/// Options of `tally kernels`.
#[derive(clap::Args)]
pub struct Args {
    /// Architectures to compile for: sm80, sm90 or all.
    #[arg(long, default_value = "all")]
    arch: String,
    /// The PTX cache to fill (default: `$TALLY_PTX_CACHE`, else `ptx/` in Tally's cache).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

/// The architectures `name` stands for.
fn archs(name: &str) -> Result<Vec<Arch>> {
    let n = name.trim().to_ascii_lowercase().replace(['_', '.'], "");
    Ok(match n.as_str() {
        "all" => Arch::ALL.to_vec(),
        "sm80" | "compute80" | "80" => vec![Arch::Sm80],
        "sm90" | "compute90" | "90" => vec![Arch::Sm90],
        _ => {
            return Err(Error::invalid(
                "kernels",
                format!("--arch {name}: give sm80, sm90 or all"),
            ))
        }
    })
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let archs = archs(&args.arch)?;
    let dir = args.cache.clone().unwrap_or_else(ptx_cache_dir);
    let mut rows = Vec::new();
    for arch in archs {
        for (file, src) in KERNELS {
            let started = Instant::now();
            let (ptx, origin) = cached_ptx(&dir, file, src, arch)
                .map_err(|e| Error::invalid("kernels", e.to_string()))?;
            let origin = match origin {
                PtxOrigin::Cache => "cache".to_string(),
                PtxOrigin::Compiled { not_kept: None } => "compiled".to_string(),
                PtxOrigin::Compiled {
                    not_kept: Some(why),
                } => {
                    return Err(Error::invalid(
                        "kernels",
                        format!("kernels/{file} compiled but not kept: {why}"),
                    ))
                }
            };
            rows.push(vec![
                format!("kernels/{file}"),
                arch.to_string(),
                origin,
                format!("{}", ptx.len()),
                format!("{:.2}", started.elapsed().as_secs_f64()),
            ]);
        }
    }
    let mut doc = Doc::new(format!("PTX cache {}", dir.display()));
    doc.table(&["file", "arch", "from", "PTX bytes", "seconds"], rows);
    print!("{}", doc.terminal());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_parse_from_their_usual_names() {
        assert_eq!(archs("sm_90").unwrap(), vec![Arch::Sm90]);
        assert_eq!(archs("compute_80").unwrap(), vec![Arch::Sm80]);
        assert_eq!(archs("all").unwrap(), Arch::ALL.to_vec());
        let e = archs("sm70").unwrap_err().to_string();
        assert!(e.contains("sm70") && e.contains("sm80, sm90 or all"), "{e}");
    }
}
