//! The CLI's GPU paths on the emulated GPU (`tally_tests::emulated_gpu`: a stand-in driver
//! and cuBLAS that run Tally's kernels on the CPU, and a stand-in NVML), as `gpu/run.sh` runs
//! them on a GPU: `profile` (with its NVML energy reading), `bench` and `calibrate --quick`
//! with `--device cuda`. The stand-in libraries
//! come first on the child's `LD_LIBRARY_PATH`, so this runs on the emulator even where a GPU
//! is. Needs a C++ compiler and NVRTC; without them it says why and passes, unless CI's
//! `TALLY_REQUIRE_CXX=1` or `TALLY_REQUIRE_NVRTC=1` asks for them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ok, read_json, scratch};

/// The emulator's folder, or `None` after saying why it could not be built.
fn emulator() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("emulated-gpu");
    tally_tests::emulated_gpu::build_or_skip(&dir)
}

/// `tally args` with the emulator first on the library path.
fn on_emulator(lib: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env(
            "LD_LIBRARY_PATH",
            tally_tests::emulated_gpu::library_path(lib),
        )
        .output()
        .expect("tally runs")
}

/// A profile report's total FPO and calls.
fn total(report: &serde_json::Value) -> (u64, u64) {
    let t = &report["total"];
    (t["fpo"].as_u64().unwrap(), t["calls"].as_u64().unwrap())
}

#[test]
fn profile_bench_and_calibrate_run_on_the_emulated_gpu() {
    let Some(lib) = emulator() else {
        return;
    };
    let dir = scratch("emulated-gpu-cli");

    // The digits MLP on both devices: the GPU's kernels and cuBLAS count what the CPU does.
    let (cpu_json, gpu_json) = (dir.join("cpu.json"), dir.join("gpu.json"));
    for (device, json) in [("cpu", &cpu_json), ("cuda", &gpu_json)] {
        let out = on_emulator(
            &lib,
            &[
                "profile",
                "digits-mlp",
                "--device",
                device,
                "--repeat",
                "1",
                "--json",
                json.to_str().unwrap(),
            ],
        );
        let text = ok(&out);
        assert!(text.contains("matmul"), "{text}");
    }
    let gpu = read_json(&gpu_json);
    assert_eq!(gpu["run"]["device"], "cuda:0", "{gpu}");
    assert_eq!(total(&gpu), total(&read_json(&cpu_json)));
    // Energy through NVML: the stand-in's counter is 50 W times wall time, so the reading
    // over its window must come to 50 W (millijoules and seconds converted right).
    let energy = &gpu["run"]["energy"];
    assert_eq!(energy["method"], "nvml", "{energy}");
    let watts = energy["joules"].as_f64().unwrap() / energy["window_s"].as_f64().unwrap();
    assert!((watts - 50.0).abs() < 2.5, "{watts} W from {energy}");

    // A decode step of SmolLM2 on seeded weights (no download): bench's machine line.
    let out = on_emulator(
        &lib,
        &[
            "bench", "smollm2", "--seeded", "1", "--device", "cuda", "--past", "4", "--seq", "1",
            "--repeat", "1", "--dtype", "bf16",
        ],
    );
    let text = ok(&out);
    assert!(
        text.contains("bench model=smollm2-135m-instruct counting=on passes=1 median_s="),
        "{text}"
    );

    // The GPU's ceilings, quick sizes: every figure positive, in the schema ncu.sh reads.
    let ceilings = dir.join("ceilings.json");
    let out = on_emulator(
        &lib,
        &[
            "calibrate",
            "--device",
            "cuda",
            "--quick",
            "--json",
            ceilings.to_str().unwrap(),
        ],
    );
    let text = ok(&out);
    assert!(text.contains("Tally emulated GPU"), "{text}");
    let c = read_json(&ceilings);
    assert_eq!(c["schema"], "tally.gpu-ceilings/1", "{c}");
    let figures = c["ceilings"].as_array().expect("ceilings");
    assert_eq!(figures.len(), 5, "{c}");
    for f in figures {
        assert!(f["value"].as_f64().unwrap() > 0.0, "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
