//! `tally kernels`: every kernel file compiled into the PTX cache the first time and read
//! back from it the next, or, without NVRTC, an error that says what was looked for.

mod common;

use common::*;

/// Whether NVRTC is here (CI installs it and sets `TALLY_REQUIRE_NVRTC=1`).
fn nvrtc_here() -> bool {
    tally_cuda::nvrtc_available().is_ok()
}

#[test]
fn the_cache_fills_once_and_is_read_back() {
    let dir = scratch("kernels-ptx");
    let cache = dir.join("ptx");
    let run = || {
        tally(&[
            "kernels",
            "--arch",
            "sm90",
            "--cache",
            cache.to_str().unwrap(),
        ])
    };
    if !nvrtc_here() {
        if std::env::var("TALLY_REQUIRE_NVRTC").as_deref() == Ok("1") {
            panic!("TALLY_REQUIRE_NVRTC=1 but NVRTC is not here");
        }
        let out = run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("libnvrtc"), "{err}");
        println!("skipping the compile: no NVRTC here ({err})");
        return;
    }
    let rows = |out: &str, from: &str| {
        out.lines()
            .filter(|l| l.starts_with("kernels/") && l.contains(" compute_90 "))
            .filter(|l| l.split_whitespace().nth(2) == Some(from))
            .count()
    };
    let first = ok(&run());
    let files = tally_cuda::KERNELS.len();
    assert_eq!(rows(&first, "compiled"), files, "{first}");
    let ptx = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(
        ptx,
        files,
        "one PTX file per kernel file in {}",
        cache.display()
    );
    let second = ok(&run());
    assert_eq!(rows(&second, "cache"), files, "{second}");
}

#[test]
fn an_unknown_architecture_is_named() {
    let out = tally(&["kernels", "--arch", "sm70"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--arch sm70"),
        "{err}"
    );
}
