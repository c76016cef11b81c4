//! `tally calibrate --quick` end to end: prints the ceilings, writes a versioned JSON
//! profile with positive figures, and `--save` honours `TALLY_CACHE`.

use std::process::Command;

#[test]
fn quick_calibrate_prints_and_writes_a_versioned_profile() {
    let dir = std::env::temp_dir().join(format!("tally-calibrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("hw.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["calibrate", "--quick", "--save", "--json"])
        .arg(&json)
        .env("TALLY_CACHE", dir.join("cache"))
        .output()
        .expect("tally runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("GFLOP/s") && stdout.contains("GB/s"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["schema"], "tally.hardware/1");
    assert_eq!(v["quick"], true);
    let figures = v["figures"].as_array().unwrap();
    for kernel in ["f32_fma", "copy", "triad"] {
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
