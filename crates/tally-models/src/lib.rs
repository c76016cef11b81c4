//! Tally's reference models. Each loads its weights through `tally-nn` and runs on
//! Tally's own kernels, so every FPO it takes is counted.

pub mod bert;
pub mod digits;
pub mod llama;
pub mod mobilenet;

use std::path::PathBuf;

/// The folder holding shipped models: `$TALLY_MODELS` when set, else the repository's
/// `models/` (found from this crate's source location, so it works from a fresh clone).
pub fn models_dir() -> PathBuf {
    std::env::var_os("TALLY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")))
}

/// The folder holding fetched checkpoints (`models/fetch NAME` puts each in `NAME/` under
/// it): `$TALLY_CACHE` when set, else `$HOME/.cache/tally`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TALLY_CACHE") {
        return PathBuf::from(dir);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache")
        .join("tally")
}
