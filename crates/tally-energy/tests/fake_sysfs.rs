//! RAPL parsing and the energy meter against fake powercap trees built in temp dirs,
//! and a reader that simulates `EACCES` (tests may run as root, where chmod does not block).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tally_energy::rapl::FsReader;
use tally_energy::{
    delta_uj, EnergyMeter, EnergyReading, Method, Rapl, RaplError, SysfsReader, MIN_WINDOW,
};

/// Writes one zone's files.
fn zone(dir: &Path, name: &str, energy_uj: &str, max_uj: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    std::fs::write(dir.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
    std::fs::write(dir.join("max_energy_range_uj"), format!("{max_uj}\n")).unwrap();
}

/// Two packages, package 0 with a `core` subdomain, plus the `intel-rapl` control-type
/// directory the kernel also puts at the root.
fn two_packages() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("intel-rapl")).unwrap();
    zone(
        &r.join("intel-rapl:0"),
        "package-0",
        "1000",
        262_143_328_850,
    );
    zone(
        &r.join("intel-rapl:0/intel-rapl:0:0"),
        "core",
        "400",
        262_143_328_850,
    );
    zone(
        &r.join("intel-rapl:1"),
        "package-1",
        "2000",
        262_143_328_850,
    );
    root
}

#[test]
fn discovers_two_packages_and_a_subdomain() {
    let root = two_packages();
    let rapl = Rapl::discover(root.path()).unwrap();
    let p = rapl.packages();
    assert_eq!(p.len(), 2);
    assert_eq!(
        (p[0].id.as_str(), p[0].name.as_str()),
        ("intel-rapl:0", "package-0")
    );
    assert_eq!(
        (p[1].id.as_str(), p[1].name.as_str()),
        ("intel-rapl:1", "package-1")
    );
    assert_eq!(p[0].max_energy_range_uj, 262_143_328_850);
    assert_eq!(p[0].subzones.len(), 1);
    assert_eq!(p[0].subzones[0].id, "intel-rapl:0:0");
    assert_eq!(p[0].subzones[0].name, "core");
    assert!(p[1].subzones.is_empty());
    assert_eq!(rapl.sample().unwrap().energy_uj, vec![1000, 2000]);
    assert_eq!(rapl.domains(), "package-0+package-1");
}

#[test]
fn wrap_around_adds_the_max_range() {
    assert_eq!(delta_uj(100, 350, 1000), 250);
    // 900 → wraps at 1000 → 50: (1000 - 900) + 50.
    assert_eq!(delta_uj(900, 50, 1000), 150);
    assert_eq!(delta_uj(7, 7, 1000), 0);
}

#[test]
fn joules_sum_packages_with_wrap_and_skip_psys() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    zone(&r.join("intel-rapl:0"), "package-0", "0", 1_000_000);
    zone(&r.join("intel-rapl:1"), "package-1", "0", 1_000_000);
    zone(&r.join("intel-rapl:2"), "psys", "0", 1_000_000);
    let rapl = Rapl::discover(r).unwrap();
    let a = tally_energy::Sample {
        energy_uj: vec![900_000, 100, 0],
    };
    let b = tally_energy::Sample {
        energy_uj: vec![400_000, 2_000_100, 5_000_000],
    };
    // package-0 wrapped: (1_000_000 - 900_000) + 400_000 = 500_000 µJ;
    // package-1: 2_000_000 µJ; psys not counted (it contains the packages).
    let j = rapl.joules_between(&a, &b);
    assert!((j - 2.5).abs() < 1e-12, "{j}");
}

#[test]
fn unparsable_energy_is_a_typed_error_and_makes_the_meter_unavailable() {
    let root = two_packages();
    std::fs::write(root.path().join("intel-rapl:1/energy_uj"), "garbage\n").unwrap();
    let rapl = Rapl::discover(root.path()).unwrap();
    match rapl.sample() {
        Err(RaplError::Unparsable { path, text }) => {
            assert!(path.ends_with("intel-rapl:1/energy_uj"), "{path:?}");
            assert_eq!(text, "garbage");
        }
        other => panic!("expected Unparsable, got {other:?}"),
    }
    let meter = EnergyMeter::detect_at(root.path().to_str().unwrap());
    let reason = meter.unavailable_reason().expect("unavailable");
    assert!(reason.contains("intel-rapl:1/energy_uj"), "{reason}");
}

/// The filesystem, except that every `energy_uj` answers EACCES.
struct Denied;

impl SysfsReader for Denied {
    fn read(&self, path: &Path) -> io::Result<String> {
        if path.ends_with("energy_uj") {
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        } else {
            FsReader.read(path)
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        FsReader.list(dir)
    }
}

#[test]
fn permission_denied_is_typed_and_explained() {
    let root = two_packages();
    let rapl = Rapl::discover_with(root.path(), Box::new(Denied)).unwrap();
    assert_eq!(rapl.packages().len(), 2, "discovery needs no counter");
    match rapl.sample() {
        Err(RaplError::PermissionDenied { path }) => {
            assert!(path.ends_with("intel-rapl:0/energy_uj"), "{path:?}")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    let meter = EnergyMeter::from_rapl(Rapl::discover_with(root.path(), Box::new(Denied)));
    let (v, reading) = meter.measure_energy(|| 7);
    assert_eq!(v, 7);
    assert_eq!(reading.method, Method::NotMeasured);
    assert_eq!(reading.joules, None);
    assert!(
        reading.note.contains("permission denied"),
        "{}",
        reading.note
    );
    assert!(reading
        .summary()
        .starts_with("energy: not measured (permission denied"));
}

#[test]
fn missing_root_and_empty_root_are_unavailable_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("no-such-powercap");
    assert!(matches!(
        Rapl::discover(&missing),
        Err(RaplError::NoRoot { .. })
    ));
    let meter = EnergyMeter::detect_at(missing.to_str().unwrap());
    let reason = meter.unavailable_reason().unwrap();
    assert!(reason.contains("no powercap directory"), "{reason}");
    assert!(matches!(
        Rapl::discover(dir.path()),
        Err(RaplError::NoZones { .. })
    ));
}

#[test]
fn rapl_meter_reads_a_window_and_flags_it_too_short() {
    let root = two_packages();
    let meter = EnergyMeter::detect_at(root.path().to_str().unwrap());
    assert!(meter.unavailable_reason().is_none());
    // Counters of a fake tree do not move: 0 J, read by RAPL, over a tiny window.
    let ((), r) = meter.measure_energy(|| ());
    assert_eq!(r.method, Method::Rapl);
    assert_eq!(r.joules, Some(0.0));
    assert_eq!(r.repeats, 1);
    assert!(r.too_short);
    assert_eq!(r.note, "package-0+package-1");
}

#[test]
fn measure_repeated_runs_until_the_window_is_long_enough() {
    let meter = EnergyMeter::Unavailable {
        reason: "test".into(),
    };
    let mut n = 0u64;
    let r = meter.measure_repeated(Duration::from_millis(120), || {
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    });
    assert_eq!(r.repeats, n);
    assert!(n >= 12, "{n}");
    assert!(r.window_s >= 0.12);
    assert!(!r.too_short);
    assert_eq!(r.method, Method::NotMeasured);
    assert_eq!(r.joules_per_repeat(), None);
}

#[test]
fn modelled_is_labelled_and_per_repeat_divides() {
    let r = EnergyReading::modelled(50.0, Duration::from_secs(2), 4);
    assert_eq!(r.method, Method::Modelled);
    assert_eq!(r.joules, Some(100.0)); // 50 W × 2 s
    assert_eq!(r.joules_per_repeat(), Some(25.0));
    assert_eq!(r.watts(), Some(50.0));
    assert!(r.summary().contains("modelled"), "{}", r.summary());
    assert!(MIN_WINDOW >= Duration::from_millis(100));
}

#[test]
fn this_machine_says_clearly_whether_rapl_is_readable() {
    match EnergyMeter::detect() {
        EnergyMeter::Rapl(r) => println!("RAPL readable: {}", r.domains()),
        EnergyMeter::Unavailable { reason } => {
            assert!(!reason.is_empty());
            println!("energy: not measured ({reason})");
        }
        EnergyMeter::Nvml(g) => panic!("detect() reads RAPL, never a GPU: {g:?}"),
    }
}
