//! NVRTC: kernel files to PTX for a GPU architecture, headers pasted in place.

use std::fmt;

use crate::HEADERS;

/// A virtual GPU architecture to compile PTX for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// Ampere (A100): `compute_80`.
    Sm80,
    /// Hopper (H100, H200): `compute_90`.
    Sm90,
}

impl Arch {
    /// Every architecture CI compiles for.
    pub const ALL: [Arch; 2] = [Arch::Sm80, Arch::Sm90];

    /// The newest architecture here that a GPU of compute capability `major.minor` runs
    /// (PTX for `compute_80` runs on every later GPU); `None` below 8.0.
    pub fn for_capability(major: i32, minor: i32) -> Option<Arch> {
        match (major, minor) {
            (m, _) if m >= 9 => Some(Arch::Sm90),
            (8, _) => Some(Arch::Sm80),
            _ => None,
        }
    }

    /// The NVRTC `--gpu-architecture` value.
    pub fn compute(self) -> &'static str {
        match self {
            Arch::Sm80 => "compute_80",
            Arch::Sm90 => "compute_90",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.compute())
    }
}

/// Why a kernel file did not become PTX.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// libnvrtc could not be loaded on this machine.
    #[error("libnvrtc not found (tried {tried}; LD_LIBRARY_PATH={ld_library_path:?})")]
    NvrtcMissing {
        /// The library names cudarc's loader tried.
        tried: String,
        /// The search path at the time.
        ld_library_path: String,
    },
    /// A kernel includes a header that is not in [`HEADERS`].
    #[error("kernels/{file} includes \"{header}\", which is not in tally_cuda::HEADERS")]
    UnknownHeader {
        /// The kernel file.
        file: String,
        /// The header it names.
        header: String,
    },
    /// NVRTC rejected the source; `log` is its compile log.
    #[error("NVRTC could not compile kernels/{file} for {arch}: {status}\n{log}")]
    Nvrtc {
        /// The kernel file.
        file: String,
        /// The target architecture.
        arch: Arch,
        /// NVRTC's status, as cudarc reports it.
        status: String,
        /// NVRTC's program log (empty when NVRTC gave none).
        log: String,
    },
}

/// Whether libnvrtc can be loaded here (`Err(NvrtcMissing)` names what was tried).
pub fn nvrtc_available() -> Result<(), CompileError> {
    // SAFETY: only tries to dlopen the candidate library names; no NVRTC call is made.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Ok(());
    }
    Err(CompileError::NvrtcMissing {
        tried: {
            let mut names = cudarc::get_lib_name_candidates("nvrtc");
            let mut seen = std::collections::HashSet::new();
            names.retain(|n| seen.insert(n.clone()));
            names.join(", ")
        },
        ld_library_path: std::env::var("LD_LIBRARY_PATH").unwrap_or_default(),
    })
}

/// `src` with every `#include "x.cuh"` of a [`HEADERS`] file replaced by that header's
/// text, wrapped in `#line` directives so NVRTC's log still names the right file and line.
pub fn with_headers(file: &str, src: &str) -> Result<String, CompileError> {
    let mut out = String::with_capacity(src.len() + 8192);
    for (i, line) in src.lines().enumerate() {
        let include = line
            .trim()
            .strip_prefix("#include")
            .map(|rest| rest.trim().trim_matches('"'));
        match include {
            Some(header) if header.ends_with(".cuh") => {
                let (_, text) = HEADERS.iter().find(|(h, _)| *h == header).ok_or_else(|| {
                    CompileError::UnknownHeader {
                        file: file.to_string(),
                        header: header.to_string(),
                    }
                })?;
                out.push_str(&format!("#line 1 \"{header}\"\n{text}\n"));
                out.push_str(&format!("#line {} \"{file}\"\n", i + 2));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// The options every kernel file is compiled with (besides the architecture).
pub(crate) const NVRTC_OPTIONS: &[&str] = &["--std=c++17"];

/// Compiles the kernel file `file` (its source `src`, as in [`crate::KERNELS`]) to PTX for
/// `arch` with NVRTC, headers pasted in by [`with_headers`]. Returns the PTX text.
pub fn compile_ptx(file: &str, src: &str, arch: Arch) -> Result<String, CompileError> {
    compile_pasted(file, with_headers(file, src)?, arch)
}

/// [`compile_ptx`] of a source whose headers are already pasted in (`full`).
pub(crate) fn compile_pasted(file: &str, full: String, arch: Arch) -> Result<String, CompileError> {
    nvrtc_available()?;
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch.compute()),
        name: Some(file.to_string()),
        options: NVRTC_OPTIONS.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    };
    match cudarc::nvrtc::compile_ptx_with_opts(full, opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(e) => {
            let (status, log) = match e {
                cudarc::nvrtc::CompileError::CompileError { nvrtc, log, .. } => {
                    (format!("{nvrtc:?}"), log.to_string_lossy().into_owned())
                }
                other => (format!("{other:?}"), String::new()),
            };
            Err(CompileError::Nvrtc {
                file: file.to_string(),
                arch,
                status,
                log,
            })
        }
    }
}
