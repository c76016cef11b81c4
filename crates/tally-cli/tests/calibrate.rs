//! `tally calibrate --quick` end to end: prints the ceilings, writes a versioned JSON
//! profile with positive figures, and `--save` honours `TALLY_CACHE`.

mod common;

use common::*;

#[test]
fn quick_calibrate_prints_and_writes_a_versioned_profile() {
    let dir = scratch("calibrate");
    let json = dir.join("hw.json");
    let cache = dir.join("cache");
    let out = tally_env(
        &[
            "calibrate",
            "--quick",
            "--save",
            "--json",
            json.to_str().unwrap(),
        ],
        &[("TALLY_CACHE", &cache)],
    );
    let stdout = ok(&out);
    assert!(
        stdout.contains("GFLOP/s") && stdout.contains("GB/s"),
        "{stdout}"
    );
    let v: serde_json::Value = read_json(&json);
    assert_eq!(v["schema"], "tally.hardware/1");
    assert_eq!(v["quick"], true);
    let figures = v["figures"].as_array().unwrap();
    for kernel in ["f32_fma", "copy", "triad", "read"] {
        assert!(
            figures.iter().any(|f| f["kernel"] == kernel),
            "no {kernel} figure"
        );
    }
    for f in figures {
        assert!(f["value"].as_f64().unwrap() > 0.0, "{f}");
        assert!(!f["method"].as_str().unwrap().is_empty(), "{f}");
    }
    let saved = dir.join("cache/hardware.json");
    assert!(saved.exists(), "--save did not write {}", saved.display());
    std::fs::remove_dir_all(&dir).ok();
}
