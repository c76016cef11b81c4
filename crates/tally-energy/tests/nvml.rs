//! The GPU energy meter: on a machine without an NVIDIA driver it says why and measures
//! nothing; on one with a GPU it reads the counter around a region.

use std::time::Duration;

use tally_energy::{EnergyMeter, Method};

#[test]
fn gpu_energy_is_measured_or_its_absence_explained() {
    match EnergyMeter::detect_gpu(0) {
        EnergyMeter::Unavailable { reason } => {
            assert!(reason.contains("NVML"), "{reason}");
            let r = EnergyMeter::detect_gpu(0).measure_repeated(Duration::ZERO, || {});
            assert_eq!(r.method, Method::NotMeasured);
            assert!(r.joules.is_none());
            println!("skipping the reading: {reason}");
        }
        meter => {
            let r = meter.measure_repeated(Duration::from_millis(300), || {
                std::thread::sleep(Duration::from_millis(10))
            });
            assert_eq!(r.method, Method::Nvml, "{r:?}");
            let j = r.joules.expect("a reading");
            assert!(j >= 0.0, "{r:?}");
            println!("{}", r.summary());
        }
    }
}
