//! [`EnergyMeter`]: energy read around a region where the machine has a counter, and an
//! honest `not_measured` with its reason where it has none. Every [`EnergyReading`]
//! states its [`Method`]; a modelled figure exists only when the caller asks for one.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::nvml::GpuEnergy;
use crate::rapl::{Rapl, RaplError, DEFAULT_ROOT};

/// RAPL counters update every 10–100 ms; a window shorter than this is flagged.
pub const MIN_WINDOW: Duration = Duration::from_millis(100);

/// How an energy figure was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Read from Linux powercap RAPL counters.
    Rapl,
    /// Read from an NVIDIA GPU's total energy counter (NVML).
    Nvml,
    /// No counter was available; `joules` is absent.
    NotMeasured,
    /// A stated power (watts) times the measured window: an estimate, not a measurement.
    Modelled,
}

impl Method {
    /// The name reports print (`rapl`, `not_measured`, `modelled`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Rapl => "rapl",
            Method::Nvml => "nvml",
            Method::NotMeasured => "not_measured",
            Method::Modelled => "modelled",
        }
    }
}

/// The energy of one measured window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyReading {
    /// How `joules` was obtained.
    pub method: Method,
    /// Energy over the whole window (all repeats), joules; `None` when not measured.
    pub joules: Option<f64>,
    /// Wall-clock length of the window, seconds.
    pub window_s: f64,
    /// True when the window was under [`MIN_WINDOW`], so the counter may not have ticked.
    pub too_short: bool,
    /// How many times the region ran inside the window.
    pub repeats: u64,
    /// What was summed (`package-0+package-1`), why nothing was measured, or the stated
    /// power of a modelled figure.
    pub note: String,
}

impl EnergyReading {
    /// Energy per repeat of the region, joules.
    pub fn joules_per_repeat(&self) -> Option<f64> {
        self.joules.map(|j| j / self.repeats.max(1) as f64)
    }

    /// Average power over the window, watts.
    pub fn watts(&self) -> Option<f64> {
        self.joules
            .filter(|_| self.window_s > 0.0)
            .map(|j| j / self.window_s)
    }

    /// A modelled estimate: `watts` (stated by the caller) times a measured `window`.
    /// Labelled [`Method::Modelled`]; never produced unless asked for.
    pub fn modelled(watts: f64, window: Duration, repeats: u64) -> EnergyReading {
        let window_s = window.as_secs_f64();
        EnergyReading {
            method: Method::Modelled,
            joules: Some(watts * window_s),
            window_s,
            too_short: false,
            repeats,
            note: format!("{watts} W stated × measured time"),
        }
    }

    /// One line for a terminal: `energy: 12.3 J over 1.02 s (rapl: package-0)` or
    /// `energy: not measured (reason)`.
    pub fn summary(&self) -> String {
        match self.joules {
            None => format!("energy: not measured ({})", self.note),
            Some(j) => {
                let per = if self.repeats > 1 {
                    format!(
                        ", {:.4} J per repeat × {}",
                        j / self.repeats as f64,
                        self.repeats
                    )
                } else {
                    String::new()
                };
                let short = if self.too_short {
                    "; window under 100 ms, counters may not have updated"
                } else {
                    ""
                };
                format!(
                    "energy: {j:.3} J over {:.3} s{per} ({}: {}{short})",
                    self.window_s,
                    self.method.name(),
                    self.note
                )
            }
        }
    }
}

/// Where energy can be read on this machine, or why it cannot.
#[derive(Debug)]
pub enum EnergyMeter {
    /// RAPL counters that were readable when detected.
    Rapl(Rapl),
    /// A GPU's NVML energy counter that was readable when detected (boxed: NVML's
    /// function table is 12 kB).
    Nvml(Box<GpuEnergy>),
    /// No usable counter.
    Unavailable {
        /// Why (no powercap directory, no zones, permission denied, ...).
        reason: String,
    },
}

impl EnergyMeter {
    /// Looks for RAPL under `/sys/class/powercap`.
    pub fn detect() -> EnergyMeter {
        EnergyMeter::detect_at(DEFAULT_ROOT)
    }

    /// GPU `index`'s NVML energy counter (for work that runs on that GPU: the host's
    /// energy is not in it).
    pub fn detect_gpu(index: u32) -> EnergyMeter {
        match GpuEnergy::open(index) {
            Ok(g) => EnergyMeter::Nvml(Box::new(g)),
            Err(reason) => EnergyMeter::Unavailable { reason },
        }
    }

    /// Looks for RAPL under `root` (tests point this at fake trees).
    pub fn detect_at(root: &str) -> EnergyMeter {
        EnergyMeter::from_rapl(Rapl::discover(root))
    }

    /// A meter from a discovery result: usable only when one sample can be read now.
    pub fn from_rapl(rapl: Result<Rapl, RaplError>) -> EnergyMeter {
        match rapl.and_then(|r| r.sample().map(|_| r)) {
            Ok(r) => EnergyMeter::Rapl(r),
            Err(e) => EnergyMeter::Unavailable {
                reason: e.to_string(),
            },
        }
    }

    /// Why energy is not measured here, or `None` when it is.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match self {
            EnergyMeter::Rapl(_) | EnergyMeter::Nvml(_) => None,
            EnergyMeter::Unavailable { reason } => Some(reason),
        }
    }

    /// Runs `f` once and reads the energy around it.
    pub fn measure_energy<T>(&self, f: impl FnOnce() -> T) -> (T, EnergyReading) {
        let mut f = Some(f);
        let mut out = None;
        let reading = self.window(1, || {
            if let Some(f) = f.take() {
                out = Some(f());
            }
            true
        });
        match out {
            Some(v) => (v, reading),
            None => unreachable!("window runs the region at least once"),
        }
    }

    /// Repeats `f` until the window reaches `min_window` (at least once), and reads the
    /// energy of the whole window; [`EnergyReading::joules_per_repeat`] gives one region's.
    pub fn measure_repeated(&self, min_window: Duration, mut f: impl FnMut()) -> EnergyReading {
        let start = Instant::now();
        self.window(u64::MAX, || {
            f();
            start.elapsed() < min_window
        })
    }

    /// Samples, runs `step` until it returns false or has run `max` times, samples again.
    fn window(&self, max: u64, mut step: impl FnMut() -> bool) -> EnergyReading {
        let before = match self {
            EnergyMeter::Rapl(r) => Some(r.sample().map(Before::Rapl).map_err(|e| e.to_string())),
            EnergyMeter::Nvml(g) => Some(g.sample_mj().map(Before::Nvml)),
            EnergyMeter::Unavailable { .. } => None,
        };
        let start = Instant::now();
        let mut repeats = 0;
        while repeats < max {
            repeats += 1;
            if !step() {
                break;
            }
        }
        let window = start.elapsed();
        let window_s = window.as_secs_f64();
        let too_short = window < MIN_WINDOW;
        let not_measured = |note: String| EnergyReading {
            method: Method::NotMeasured,
            joules: None,
            window_s,
            too_short,
            repeats,
            note,
        };
        match (self, before) {
            (EnergyMeter::Nvml(g), Some(Ok(Before::Nvml(a)))) => match g.sample_mj() {
                Ok(b) => EnergyReading {
                    method: Method::Nvml,
                    joules: Some(b.saturating_sub(a) as f64 / 1e3),
                    window_s,
                    too_short,
                    repeats,
                    note: g.describe(),
                },
                Err(e) => not_measured(e),
            },
            (EnergyMeter::Rapl(r), Some(Ok(Before::Rapl(a)))) => match r.sample() {
                Ok(b) => EnergyReading {
                    method: Method::Rapl,
                    joules: Some(r.joules_between(&a, &b)),
                    window_s,
                    too_short,
                    repeats,
                    note: r.domains(),
                },
                Err(e) => not_measured(e.to_string()),
            },
            (_, Some(Err(e))) => not_measured(e),
            (EnergyMeter::Unavailable { reason }, _) => not_measured(reason.clone()),
            (_, _) => not_measured("no sample taken".into()),
        }
    }
}

/// The first sample of a window, from whichever counter the meter reads.
enum Before {
    Rapl(crate::rapl::Sample),
    Nvml(u64),
}
