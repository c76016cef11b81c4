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
/// it): `$TALLY_CACHE` when set, else `$HOME/.cache/tally` ([`tally_core::cache_dir`]).
pub fn cache_dir() -> PathBuf {
    tally_core::cache_dir()
}
