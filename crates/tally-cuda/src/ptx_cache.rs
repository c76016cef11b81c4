//! Compiled PTX kept on disk, so that only the first process on a machine pays NVRTC for a
//! kernel file (several seconds for the largest): `<dir>/<stem>-<arch>-<key>.ptx`, where
//! the key hashes everything the compile reads (the source with its headers pasted in, the
//! architecture and NVRTC's options). A changed kernel or header gets a new file; a stale
//! one is never read. PTX is portable forward: the driver compiles it for the GPU at hand
//! (and keeps that in its own cache), so PTX made by one NVRTC serves a machine with
//! another, which is how `gpu/build.sh` ships it precompiled.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::compile::{compile_pasted, with_headers, NVRTC_OPTIONS};
use crate::{Arch, CompileError};

/// Where compiled PTX is kept: `$TALLY_PTX_CACHE` when set, else `ptx/` in Tally's cache
/// folder ([`tally_core::cache_dir`]).
pub fn ptx_cache_dir() -> PathBuf {
    std::env::var_os("TALLY_PTX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| tally_core::cache_dir().join("ptx"))
}

/// Where [`cached_ptx`] came by its PTX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtxOrigin {
    /// Read from the cache.
    Cache,
    /// Compiled by NVRTC now, and saved unless `not_kept` says why not (the PTX is
    /// returned all the same).
    Compiled {
        /// `None` when the cache file was written; else the reason.
        not_kept: Option<String>,
    },
}

/// The cache file for `file` (source `src`) compiled for `arch`, under `dir`.
pub fn ptx_cache_file(
    dir: &Path,
    file: &str,
    src: &str,
    arch: Arch,
) -> Result<PathBuf, CompileError> {
    Ok(file_for(dir, file, &with_headers(file, src)?, arch))
}

/// The cache file for `file` whose source, headers pasted in, is `full`.
fn file_for(dir: &Path, file: &str, full: &str, arch: Arch) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (full, arch.compute(), NVRTC_OPTIONS).hash(&mut h);
    let stem = file.strip_suffix(".cu").unwrap_or(file);
    dir.join(format!("{stem}-{}-{:016x}.ptx", arch.compute(), h.finish()))
}

/// Whether `text` looks like a whole PTX module (a cut or foreign file is compiled again).
fn is_ptx(text: &str) -> bool {
    text.contains(".version") && text.contains(".target") && text.contains(".entry")
}

/// [`crate::compile_ptx`] through the cache in `dir`: the cached PTX when there is one, else
/// NVRTC's, saved for the next process (written to a temporary file and renamed, so that
/// concurrent processes never read half a file).
pub fn cached_ptx(
    dir: &Path,
    file: &str,
    src: &str,
    arch: Arch,
) -> Result<(String, PtxOrigin), CompileError> {
    // The headers are pasted once: the key hashes the result, and a miss compiles it.
    let full = with_headers(file, src)?;
    let path = file_for(dir, file, &full, arch);
    if let Ok(text) = std::fs::read_to_string(&path) {
        if is_ptx(&text) {
            return Ok((text, PtxOrigin::Cache));
        }
    }
    let ptx = compile_pasted(file, full, arch)?;
    let not_kept = save(&path, &ptx)
        .err()
        .map(|e| format!("{}: {e}", path.display()));
    Ok((ptx, PtxOrigin::Compiled { not_kept }))
}

fn save(path: &Path, ptx: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("ptx.{}.tmp", std::process::id()));
    std::fs::write(&tmp, ptx)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_covers_source_headers_and_architecture() {
        let dir = Path::new("/c");
        let src = "#include \"tally_count.cuh\"\nextern \"C\" __global__ void k() {}\n";
        let a = ptx_cache_file(dir, "unary.cu", src, Arch::Sm90).unwrap();
        assert_eq!(a, ptx_cache_file(dir, "unary.cu", src, Arch::Sm90).unwrap());
        assert!(a.starts_with(dir));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("unary-compute_90-") && name.ends_with(".ptx"),
            "{name}"
        );
        assert_ne!(a, ptx_cache_file(dir, "unary.cu", src, Arch::Sm80).unwrap());
        let edited = src.replace("k()", "k2()");
        assert_ne!(
            a,
            ptx_cache_file(dir, "unary.cu", &edited, Arch::Sm90).unwrap()
        );
        // A header the source includes is part of the key (pasted in before hashing).
        let e = ptx_cache_file(dir, "x.cu", "#include \"nope.cuh\"\n", Arch::Sm90)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.cuh"), "{e}");
    }

    #[test]
    fn only_whole_modules_are_read_back() {
        assert!(is_ptx(".version 8.8\n.target sm_90\n.visible .entry k()\n"));
        assert!(!is_ptx(".version 8.8\n.target sm_90\n"));
        assert!(!is_ptx(""));
    }
}
