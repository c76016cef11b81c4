//! The hardware profile: this machine's measured ceilings, each with its unit and
//! method, saved as versioned JSON (`"schema": "tally.hardware/1"`) that later reports read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tally_core::{Error, Result};

use crate::peak::{self, Isa};
use crate::{bandwidth, Effort};

/// The schema tag written into, and required of, every profile file.
pub const SCHEMA: &str = "tally.hardware/1";

/// One measured figure: what, with what, on how many threads, how much, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// `peak` (compute) or `bandwidth` (memory).
    pub quantity: String,
    /// The kernel measured: `f32_fma`, `bf16_dot`, `bf16_amx`, `copy`, `triad`, `read`.
    pub kernel: String,
    /// The instruction set it ran with (`avx512`, `avx2`, `portable`, `avx512bf16`, `compiler`).
    pub isa: String,
    /// Threads running at once.
    pub threads: usize,
    /// The figure, in `unit`.
    pub value: f64,
    /// `GFLOP/s` or `GB/s` (10⁹).
    pub unit: String,
    /// How it was measured.
    pub method: String,
}

/// A measurement that was not taken, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// What would have been measured.
    pub what: String,
    /// Why it was not.
    pub reason: String,
}

/// This machine's measured ceilings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HardwareProfile {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The CPU's model name from `/proc/cpuinfo` (`unknown` where absent).
    pub cpu_model: String,
    /// Hardware threads available to this process.
    pub cores: usize,
    /// The instruction-set extensions detected that matter here.
    pub isa: Vec<String>,
    /// Seconds since the Unix epoch when it was measured.
    pub measured_at_unix_s: u64,
    /// Whether this was a `quick` smoke run (figures are then not ceilings).
    pub quick: bool,
    /// The measured figures.
    pub figures: Vec<Figure>,
    /// The measurements skipped, with reasons.
    pub skipped: Vec<Skipped>,
}

impl HardwareProfile {
    /// Measures every ceiling at `effort`, calling `progress` after each figure.
    pub fn measure(effort: &Effort, mut progress: impl FnMut(&Figure)) -> Self {
        let mut figures = Vec::new();
        let mut skipped = Vec::new();
        let mut push = |f: Figure, figures: &mut Vec<Figure>| {
            progress(&f);
            figures.push(f);
        };
        for &t in &effort.threads {
            for isa in Isa::available() {
                push(peak::fma_peak(isa, t, effort), &mut figures);
            }
            for peak in [peak::bf16_peak(t, effort), peak::amx_peak(t, effort)] {
                match peak {
                    Ok(f) => push(f, &mut figures),
                    // Each reason once, not once per thread count.
                    Err(s) if !skipped.iter().any(|k: &Skipped| k.what == s.what) => {
                        skipped.push(s)
                    }
                    Err(_) => {}
                }
            }
        }
        for f in bandwidth::measure_all(effort) {
            push(f, &mut figures);
        }
        HardwareProfile {
            schema: SCHEMA.into(),
            cpu_model: cpu_model(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            isa: isa_flags(),
            measured_at_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            quick: effort.quick,
            figures,
            skipped,
        }
    }

    /// The best compute peak for `kernel` (`f32_fma`, `bf16_dot`, `bf16_amx`) at `threads`,
    /// GFLOP/s.
    pub fn peak_gflops(&self, kernel: &str, threads: usize) -> Option<f64> {
        self.best("peak", kernel, threads)
    }

    /// The best bandwidth for `kernel` (`copy`, `triad`, `read`) at `threads`, GB/s.
    pub fn bandwidth_gbs(&self, kernel: &str, threads: usize) -> Option<f64> {
        self.best("bandwidth", kernel, threads)
    }

    fn best(&self, quantity: &str, kernel: &str, threads: usize) -> Option<f64> {
        self.figures
            .iter()
            .filter(|f| f.quantity == quantity && f.kernel == kernel && f.threads == threads)
            .map(|f| f.value)
            .reduce(f64::max)
    }

    /// `${TALLY_CACHE:-~/.cache/tally}/hardware.json`.
    pub fn default_path() -> PathBuf {
        let dir = std::env::var_os("TALLY_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tally")))
            .unwrap_or_else(|| PathBuf::from(".cache/tally"));
        dir.join("hardware.json")
    }

    /// Writes the profile as pretty JSON to `path`, creating its folder.
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            what: format!("writing hardware profile {}", path.display()),
            source,
        })?;
        std::fs::write(path, text + "\n").map_err(io)
    }

    /// Reads a profile from `path`, refusing one whose schema is not [`SCHEMA`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let p: HardwareProfile = serde_json::from_str(&text).map_err(|source| Error::Json {
            what: format!("reading hardware profile {}", path.display()),
            source,
        })?;
        if p.schema != SCHEMA {
            return Err(Error::InvalidArgument {
                op: "hardware profile",
                reason: format!(
                    "{}: schema `{}`, expected `{SCHEMA}`",
                    path.display(),
                    p.schema
                ),
            });
        }
        Ok(p)
    }
}

/// The first `model name` in `/proc/cpuinfo`, or `unknown`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| parse_model_name(&s))
        .unwrap_or_else(|| "unknown".into())
}

fn parse_model_name(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The extensions detected that the measurements use.
pub fn isa_flags() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! flag {
            ($($f:tt),*) => { $( if is_x86_feature_detected!($f) { v.push($f.into()); } )* };
        }
        flag!("sse2", "avx", "avx2", "fma", "avx512f", "avx512bf16");
    }
    if tally_cpu::gemm::amx::available() {
        v.push("amx-bf16".into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HardwareProfile {
        HardwareProfile {
            schema: SCHEMA.into(),
            cpu_model: "Test CPU".into(),
            cores: 2,
            isa: vec!["avx2".into(), "fma".into()],
            measured_at_unix_s: 1,
            quick: true,
            figures: vec![Figure {
                quantity: "peak".into(),
                kernel: "f32_fma".into(),
                isa: "avx2".into(),
                threads: 1,
                value: 123.5,
                unit: "GFLOP/s".into(),
                method: "test".into(),
            }],
            skipped: vec![Skipped {
                what: "bf16_dot peak".into(),
                reason: "absent".into(),
            }],
        }
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let dir = std::env::temp_dir().join(format!("tally-hw-{}", std::process::id()));
        let path = dir.join("sub/hardware.json");
        let p = sample();
        p.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"schema\": \"tally.hardware/1\""), "{text}");
        assert_eq!(HardwareProfile::load(&path).unwrap(), p);
        assert_eq!(p.peak_gflops("f32_fma", 1), Some(123.5));
        assert_eq!(p.bandwidth_gbs("triad", 1), None);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn load_refuses_another_schema() {
        let dir = std::env::temp_dir().join(format!("tally-hw-schema-{}", std::process::id()));
        let path = dir.join("hardware.json");
        let mut p = sample();
        p.schema = "tally.hardware/0".into();
        p.save(&path).unwrap();
        let e = HardwareProfile::load(&path).unwrap_err().to_string();
        assert!(e.contains("expected `tally.hardware/1`"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn model_name_is_parsed() {
        let info = "processor\t: 0\nmodel name\t: AMD EPYC 9B45\nflags\t: fpu\n";
        assert_eq!(parse_model_name(info).as_deref(), Some("AMD EPYC 9B45"));
        assert_eq!(parse_model_name("processor : 0\n"), None);
    }
}
