//! Where Tally keeps what it fetches or builds once per machine: checkpoints (`models/fetch`)
//! and the PTX NVRTC compiles from `kernels/`.

use std::path::PathBuf;

/// Tally's cache folder: `$TALLY_CACHE` when set, else `$HOME/.cache/tally`. Checkpoints
/// live in `NAME/` under it, compiled kernels in `ptx/`.
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
