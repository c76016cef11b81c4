//! Described targets: datasheet peaks and memory bandwidth of accelerators this machine
//! is not (H100, H200, A100, L4, TPU v5e), kept in `data/targets.json` with their sources,
//! and the roofline estimate of what counted work would cost on one of them at best.

use serde::{Deserialize, Serialize};
use tally_core::{Error, Result};

/// The data file, compiled in.
const TARGETS_JSON: &str = include_str!("../data/targets.json");

/// The schema tag of `data/targets.json`.
pub const TARGETS_SCHEMA: &str = "tally.targets/1";

/// The parsed data file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetsFile {
    /// Always [`TARGETS_SCHEMA`].
    pub schema: String,
    /// Conventions that hold for every entry (dense figures, units).
    pub note: String,
    /// The described targets.
    pub targets: Vec<Target>,
}

/// One accelerator, by its datasheet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Short id for the command line: `h100-sxm`, `tpu-v5e`, ...
    pub id: String,
    /// Full product name.
    pub name: String,
    /// `gpu` or `tpu`.
    pub kind: String,
    /// The public document the figures come from.
    pub source: String,
    /// Caveats: figures that could not be pinned down, conventions that differ.
    pub note: Option<String>,
    /// Dense peak throughput per dtype.
    pub peaks: Vec<Peak>,
    /// Off-chip memory.
    pub memory: Memory,
}

/// A dense (non-sparse) datasheet peak for one dtype.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// `fp32`, `tf32`, `bf16`, `f16`, `fp8`, `int8`.
    pub dtype: String,
    /// `TFLOP/s` (or `TOP/s` for integers).
    pub unit: String,
    /// The figure, in `unit`.
    pub value: f64,
    /// The unit that reaches it: `cuda cores`, `tensor cores`, `MXU`.
    pub engine: String,
}

/// Off-chip memory: kind, capacity and peak bandwidth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// `HBM3`, `GDDR6`, ...
    pub kind: String,
    /// Capacity in GB.
    pub capacity_gb: f64,
    /// Peak bandwidth, in `unit`.
    pub bandwidth: f64,
    /// `GB/s` (10⁹ bytes per second).
    pub unit: String,
}

impl Target {
    /// The peak for `dtype` (`f32` is read as `fp32`), if the datasheet gives one.
    pub fn peak(&self, dtype: &str) -> Option<&Peak> {
        let dtype = match dtype {
            "f32" => "fp32",
            "fp16" => "f16",
            d => d,
        };
        self.peaks.iter().find(|p| p.dtype == dtype)
    }

    /// Peak in operations per second for `dtype`.
    pub fn peak_per_s(&self, dtype: &str) -> Option<f64> {
        self.peak(dtype).map(|p| p.value * 1e12)
    }

    /// Memory bandwidth in bytes per second.
    pub fn bandwidth_per_s(&self) -> f64 {
        self.memory.bandwidth * 1e9
    }
}

/// Parses the compiled-in targets file.
pub fn targets_file() -> Result<TargetsFile> {
    let f: TargetsFile = serde_json::from_str(TARGETS_JSON).map_err(|source| Error::Json {
        what: "crates/tally-hw/data/targets.json".into(),
        source,
    })?;
    if f.schema != TARGETS_SCHEMA {
        return Err(Error::InvalidArgument {
            op: "targets",
            reason: format!("schema `{}`, expected `{TARGETS_SCHEMA}`", f.schema),
        });
    }
    Ok(f)
}

/// Every described target.
pub fn targets() -> Result<Vec<Target>> {
    Ok(targets_file()?.targets)
}

/// The target with `id`, or an error listing the ids there are.
pub fn target(id: &str) -> Result<Target> {
    let all = targets()?;
    let ids: Vec<String> = all.iter().map(|t| t.id.clone()).collect();
    all.into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| Error::InvalidArgument {
            op: "target",
            reason: format!("no target `{id}` (known: {})", ids.join(", ")),
        })
}

/// A roofline estimate: the least time the work could take on a target, by its datasheet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// `max(compute_s, memory_s)`.
    pub seconds: f64,
    /// FPO / datasheet peak for the dtype.
    pub compute_s: f64,
    /// Bytes / datasheet bandwidth.
    pub memory_s: f64,
    /// `compute` or `memory`: which term is larger.
    pub bound: &'static str,
    /// Says what this is: an estimate from datasheet figures, not a measurement.
    pub label: String,
}

/// The roofline floor for `fpo` operations moving `bytes` in `dtype` on `target`:
/// `max(fpo / peak, bytes / bandwidth)`. An estimate (datasheet peaks are rarely
/// reached), labelled as such; an error if the datasheet gives no peak for `dtype`.
pub fn roofline_time(target: &Target, fpo: f64, bytes: f64, dtype: &str) -> Result<Estimate> {
    let peak = target
        .peak_per_s(dtype)
        .ok_or_else(|| Error::InvalidArgument {
            op: "roofline_time",
            reason: format!("{} has no datasheet peak for {dtype}", target.name),
        })?;
    let floor = crate::roofline::Floor::from_rates(fpo, bytes, peak, target.bandwidth_per_s());
    Ok(Estimate {
        seconds: floor.seconds,
        compute_s: floor.compute_s,
        memory_s: floor.memory_s,
        bound: floor.bound,
        label: format!(
            "estimate: roofline floor on {} from datasheet figures ({}), not measured",
            target.name, target.source
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_file_parses_with_sources_and_positive_figures() {
        let all = targets().unwrap();
        let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            ["h100-sxm", "h200-sxm", "a100-sxm-80gb", "l4", "tpu-v5e"]
        );
        for t in &all {
            assert!(!t.source.trim().is_empty(), "{} has no source", t.id);
            assert!(!t.peaks.is_empty(), "{}", t.id);
            for p in &t.peaks {
                assert!(p.value > 0.0, "{} {}", t.id, p.dtype);
                let want = if p.dtype == "int8" {
                    "TOP/s"
                } else {
                    "TFLOP/s"
                };
                assert_eq!(p.unit, want, "{} {}", t.id, p.dtype);
            }
            assert!(t.memory.bandwidth > 0.0 && t.memory.capacity_gb > 0.0);
            assert_eq!(t.memory.unit, "GB/s");
            assert!(t.peak("bf16").is_some(), "{} lacks bf16", t.id);
        }
    }

    #[test]
    fn roofline_takes_the_larger_term() {
        let h100 = target("h100-sxm").unwrap();
        // 989.5 TFLOP/s bf16 and 3350 GB/s: 1e12 FPO take 1/989.5 s, 1e9 bytes 1/3350 s.
        let e = roofline_time(&h100, 1e12, 1e9, "bf16").unwrap();
        assert_eq!(e.bound, "compute");
        assert!((e.seconds - 1.0 / 989.5).abs() < 1e-12);
        assert!(e.label.starts_with("estimate"));
        let e = roofline_time(&h100, 1e9, 1e12, "f32").unwrap();
        assert_eq!(e.bound, "memory");
        assert!((e.seconds - 1e12 / 3350e9).abs() < 1e-12);
        assert!(roofline_time(&target("tpu-v5e").unwrap(), 1.0, 1.0, "fp32").is_err());
        assert!(target("nope").unwrap_err().to_string().contains("h100-sxm"));
    }
}
