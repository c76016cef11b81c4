//! Helpers every CLI test file shares: run the binary, require success, scratch folders,
//! JSON files, and the fetched-checkpoint check that skips with the fetch command named.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `tally` with `args`.
pub fn tally(args: &[&str]) -> Output {
    tally_env(args, &[])
}

/// Runs `tally` with `args` and extra environment variables.
pub fn tally_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("tally runs")
}

/// The run's stdout, after asserting it exited 0 (stdout and stderr shown otherwise).
pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A fresh folder for one test's files, unique to this process.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the command wrote its JSON");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The cache folder a fetched model lives in, or `None` (with the skip message) when absent.
pub fn fetched(name: &str, fetch: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("TALLY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/tally")
        });
    let dir = cache.join(name);
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} not found; run models/fetch {fetch}",
            dir.display()
        );
        None
    }
}
