//! The price tag: Equation 1 of *Green AI* (Schwartz et al., 2020),
//! `Cost(R) ∝ E · D · H` — the cost of one example, times the examples in the data set,
//! times the hyperparameter or model-selection experiments.
//!
//! A [`PriceTag`] turns one example's [`ExampleCost`] (FPO and bytes executed, seconds,
//! energy) into totals per example, per data set and over all experiments, in FPO, bytes,
//! time, kWh, kg CO2e and money. Every [`Figure`] carries its unit and its [`Source`]:
//! nothing is invented. Energy is measured (`rapl`) where the machine has a counter,
//! modelled only from a power the user states, and otherwise absent with its reason;
//! CO2e exists only where energy does, and money only where the user gives a price.

use serde::Serialize;
use tally_energy::Method;

/// Version tag of the JSON layout (`docs/price-schema.md`); bumped on incompatible change.
pub const PRICE_SCHEMA: &str = "tally.price/1";

/// Default grid carbon intensity, g CO2e per kWh: the world power sector's average for 2022.
pub const DEFAULT_GRID_G_PER_KWH: f64 = 436.0;

/// Where [`DEFAULT_GRID_G_PER_KWH`] comes from.
pub const DEFAULT_GRID_SOURCE: &str = "Ember, Global Electricity Review 2023: world average \
carbon intensity of electricity generation in 2022, 436 gCO2e/kWh (lifecycle)";

/// Joules in one kilowatt-hour.
pub const J_PER_KWH: f64 = 3.6e6;

/// Where a figure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Counted by the kernels that ran.
    Executed,
    /// Read from a hardware counter or a clock.
    Measured,
    /// Estimated from a power the user stated.
    Modelled,
    /// Given by the user on the command line or through the library.
    UserGiven,
    /// A documented default (see the figure's note).
    Default,
}

/// One number with its unit and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// The value, in `unit`.
    pub value: f64,
    /// The unit (`FPO`, `B`, `s`, `J`, `kWh`, `kg CO2e`, `currency`, ...).
    pub unit: &'static str,
    /// Where it comes from.
    pub source: Source,
}

impl Figure {
    /// A figure.
    pub fn new(value: f64, unit: &'static str, source: Source) -> Figure {
        Figure {
            value,
            unit,
            source,
        }
    }

    /// The same figure scaled by `k` (same unit and source).
    fn times(&self, k: f64) -> Figure {
        Figure::new(self.value * k, self.unit, self.source)
    }
}

/// The energy of one example, as measured, modelled, or not measured with its reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExampleEnergy {
    /// Joules per example; `None` when not measured.
    pub joules: Option<f64>,
    /// How it was obtained.
    pub method: Method,
    /// What was summed, the stated power, or why nothing was measured.
    pub note: String,
}

impl ExampleEnergy {
    /// Measured energy (RAPL) per example.
    pub fn measured(joules: f64, note: impl Into<String>) -> ExampleEnergy {
        ExampleEnergy {
            joules: Some(joules),
            method: Method::Rapl,
            note: note.into(),
        }
    }

    /// A modelled estimate: a stated power `watts` times the example's `seconds`.
    pub fn modelled(watts: f64, seconds: f64) -> ExampleEnergy {
        ExampleEnergy {
            joules: Some(watts * seconds),
            method: Method::Modelled,
            note: format!("{watts} W stated × measured time"),
        }
    }

    /// No energy figure, and why.
    pub fn not_measured(reason: impl Into<String>) -> ExampleEnergy {
        ExampleEnergy {
            joules: None,
            method: Method::NotMeasured,
            note: reason.into(),
        }
    }

    fn source(&self) -> Source {
        match self.method {
            Method::Modelled => Source::Modelled,
            Method::Rapl | Method::Nvml | Method::NotMeasured => Source::Measured,
        }
    }
}

/// What one example cost (E in Equation 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExampleCost {
    /// FPO executed per example.
    pub fpo: f64,
    /// Bytes read and written per example.
    pub bytes: f64,
    /// Seconds per example (measured).
    pub seconds: f64,
    /// Energy per example.
    pub energy: ExampleEnergy,
}

/// Totals at one scale: one example, the data set, or all experiments.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Totals {
    /// `per_example`, `dataset` or `all_experiments`.
    pub scale: &'static str,
    /// How many examples this scale covers (1, D or D·H).
    pub examples: f64,
    /// FPO executed.
    pub fpo: Figure,
    /// Bytes read and written.
    pub bytes: Figure,
    /// Time.
    pub time: Figure,
    /// Energy, joules (absent when not measured).
    pub energy_j: Option<Figure>,
    /// Energy, kWh (absent when not measured).
    pub energy_kwh: Option<Figure>,
    /// Emissions, kg CO2e (only where energy exists).
    pub co2e_kg: Option<Figure>,
    /// Energy cost (only with a price per kWh and energy).
    pub money_energy: Option<Figure>,
    /// Machine-time cost (only with a price per hour).
    pub money_time: Option<Figure>,
}

/// The price tag: `E · D · H` with every figure's unit and source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriceTag {
    /// [`PRICE_SCHEMA`].
    pub schema: &'static str,
    /// E: one example's cost.
    pub per_example: ExampleCost,
    /// D: examples in the data set.
    pub examples: u64,
    /// H: hyperparameter or model-selection experiments.
    pub experiments: u64,
    /// Grid carbon intensity, g CO2e/kWh (user-given or the documented default).
    pub grid_g_per_kwh: Figure,
    /// Where the grid intensity comes from.
    pub grid_source: String,
    /// Price per kWh (user-given), when known.
    pub price_per_kwh: Option<Figure>,
    /// Price per hour of machine time (user-given), when known.
    pub price_per_hour: Option<Figure>,
    /// Per example, data set, and all experiments.
    pub totals: [Totals; 3],
}

impl PriceTag {
    /// The price tag of `examples` (D) examples over `experiments` (H) runs. A `None` grid
    /// intensity takes [`DEFAULT_GRID_G_PER_KWH`]; money needs a price per kWh (with
    /// energy) or a price per hour ([`PriceTag::with_price_per_hour`]).
    pub fn new(
        per_example: ExampleCost,
        examples: u64,
        experiments: u64,
        grid_intensity_g_per_kwh: Option<f64>,
        price_per_kwh: Option<f64>,
    ) -> PriceTag {
        let (grid, grid_source) = match grid_intensity_g_per_kwh {
            Some(g) => (
                Figure::new(g, "g CO2e/kWh", Source::UserGiven),
                "user-given".to_string(),
            ),
            None => (
                Figure::new(DEFAULT_GRID_G_PER_KWH, "g CO2e/kWh", Source::Default),
                DEFAULT_GRID_SOURCE.to_string(),
            ),
        };
        let mut tag = PriceTag {
            schema: PRICE_SCHEMA,
            per_example,
            examples,
            experiments,
            grid_g_per_kwh: grid,
            grid_source,
            price_per_kwh: price_per_kwh.map(|p| Figure::new(p, "currency/kWh", Source::UserGiven)),
            price_per_hour: None,
            totals: std::array::from_fn(|_| Totals::empty()),
        };
        tag.compute();
        tag
    }

    /// The same tag with a price per hour of machine time (needs no energy).
    pub fn with_price_per_hour(mut self, price_per_hour: Option<f64>) -> PriceTag {
        self.price_per_hour =
            price_per_hour.map(|p| Figure::new(p, "currency/h", Source::UserGiven));
        self.compute();
        self
    }

    fn compute(&mut self) {
        let d = self.examples as f64;
        let scales = [
            ("per_example", 1.0),
            ("dataset", d),
            ("all_experiments", d * self.experiments as f64),
        ];
        self.totals = scales.map(|(scale, n)| self.totals_for(scale, n));
    }

    fn totals_for(&self, scale: &'static str, n: f64) -> Totals {
        let e = &self.per_example;
        let time = Figure::new(e.seconds * n, "s", Source::Measured);
        let energy_j = e
            .energy
            .joules
            .map(|j| Figure::new(j * n, "J", e.energy.source()));
        let energy_kwh = energy_j
            .as_ref()
            .map(|f| Figure::new(f.value / J_PER_KWH, "kWh", f.source));
        // CO2e takes its source from the energy (the weaker of the two inputs is stated there).
        let co2e_kg = energy_kwh.as_ref().map(|k| {
            Figure::new(
                k.value * self.grid_g_per_kwh.value / 1000.0,
                "kg CO2e",
                k.source,
            )
        });
        let money_energy = match (&energy_kwh, &self.price_per_kwh) {
            (Some(k), Some(p)) => Some(Figure::new(k.value * p.value, "currency", k.source)),
            _ => None,
        };
        let money_time = self
            .price_per_hour
            .as_ref()
            .map(|p| Figure::new(time.value / 3600.0 * p.value, "currency", Source::Measured));
        Totals {
            scale,
            examples: n,
            fpo: Figure::new(e.fpo, "FPO", Source::Executed).times(n),
            bytes: Figure::new(e.bytes, "B", Source::Executed).times(n),
            time,
            energy_j,
            energy_kwh,
            co2e_kg,
            money_energy,
            money_time,
        }
    }
}

impl Totals {
    fn empty() -> Totals {
        let zero = Figure::new(0.0, "", Source::Executed);
        Totals {
            scale: "",
            examples: 0.0,
            fpo: zero.clone(),
            bytes: zero.clone(),
            time: zero,
            energy_j: None,
            energy_kwh: None,
            co2e_kg: None,
            money_energy: None,
            money_time: None,
        }
    }
}

#[cfg(test)]
mod tests;
