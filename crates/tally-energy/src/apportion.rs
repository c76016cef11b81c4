//! Energy shared out to the parts of a region (kernels, op classes) by their time, only
//! when a caller asks, and always labelled as apportioned: a counter measures a window,
//! never a kernel.

use serde::Serialize;

use crate::{EnergyReading, Method};

/// A region's energy shared out by time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Apportioned {
    /// `apportioned:rapl` or `apportioned:modelled`: the method of the reading it came from.
    pub source: String,
    /// The power every part is charged at: the reading's average over its window, watts.
    pub watts: f64,
    /// Each part's share, joules, in the order the times were given.
    pub joules: Vec<f64>,
}

impl EnergyReading {
    /// Shares this reading out to parts that ran for `seconds` each: part `i` gets the
    /// window's average power × `seconds[i]`, so parts sum to the energy of their total
    /// time at that power. `None` when the reading has no energy (not measured) or no window.
    pub fn apportion(&self, seconds: &[f64]) -> Option<Apportioned> {
        let watts = self.watts()?;
        let source = match self.method {
            Method::Rapl => "apportioned:rapl",
            Method::Nvml => "apportioned:nvml",
            Method::Modelled => "apportioned:modelled",
            Method::NotMeasured => return None,
        };
        Some(Apportioned {
            source: source.to_string(),
            watts,
            joules: seconds.iter().map(|s| watts * s).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn shares_follow_time_at_the_windows_average_power() {
        // 30 J over 2 s of window: 15 W average.
        let r = EnergyReading {
            method: Method::Rapl,
            joules: Some(30.0),
            window_s: 2.0,
            too_short: false,
            repeats: 4,
            note: "package-0".into(),
        };
        let a = r.apportion(&[0.1, 0.3, 0.0]).expect("measured");
        assert_eq!(a.source, "apportioned:rapl");
        assert_eq!(a.watts, 15.0);
        assert_eq!(a.joules, vec![1.5, 4.5, 0.0]);
    }

    #[test]
    fn modelled_readings_stay_modelled_and_unmeasured_ones_share_nothing() {
        let m = EnergyReading::modelled(40.0, Duration::from_millis(500), 1);
        let a = m.apportion(&[0.25]).expect("modelled");
        assert_eq!(a.source, "apportioned:modelled");
        assert!((a.joules[0] - 10.0).abs() < 1e-12, "{:?}", a.joules);
        let none = EnergyReading {
            method: Method::NotMeasured,
            joules: None,
            window_s: 1.0,
            too_short: false,
            repeats: 1,
            note: "no powercap directory".into(),
        };
        assert_eq!(none.apportion(&[1.0]), None);
    }
}
