//! The kernel sources: listed completely, compiling to PTX for sm_80 and sm_90 with NVRTC,
//! and exporting the entry symbols the op table names.

use std::collections::BTreeSet;
use std::path::Path;

use tally_core::{BinaryOp, ReduceOp, UnaryOp};
use tally_cuda::{
    cached_ptx, compile_ptx, nvrtc_available, ptx_cache_file, Arch, CompileError, PtxOrigin,
    HEADERS, KERNELS,
};

const DTYPES: [&str; 3] = ["f32", "bf16", "f16"];

/// The files in `kernels/` ending in `ext`.
fn files_in_kernels(ext: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(ext))
        .collect()
}

/// `Ok(true)` when NVRTC is here; `Ok(false)` (after printing why) when it is not and
/// `TALLY_REQUIRE_NVRTC=1` is not set; a panic when it is required and missing.
fn nvrtc_or_skip() -> bool {
    match nvrtc_available() {
        Ok(()) => true,
        Err(e @ CompileError::NvrtcMissing { .. }) => {
            if std::env::var("TALLY_REQUIRE_NVRTC").as_deref() == Ok("1") {
                panic!("TALLY_REQUIRE_NVRTC=1 but {e}");
            }
            let why = e.to_string();
            let why = why.trim_start_matches("libnvrtc not found (");
            println!(
                "skipping: libnvrtc not found ({why}; CI installs the nvidia-cuda-nvrtc-cu12 wheel"
            );
            false
        }
        Err(e) => panic!("{e}"),
    }
}

/// The entry symbols each kernel file must export, derived from the op names.
fn expected_entries(file: &str) -> Vec<String> {
    let per_dtype = |stems: &[String]| -> Vec<String> {
        stems
            .iter()
            .flat_map(|s| DTYPES.iter().map(move |d| format!("{s}_{d}")))
            .collect()
    };
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match file {
        "unary.cu" => {
            let mut stems: Vec<String> = UnaryOp::ALL.iter().map(|o| o.name().into()).collect();
            stems.push("affine".into());
            per_dtype(&stems)
        }
        "binary.cu" => {
            let stems: Vec<String> = BinaryOp::ALL
                .iter()
                .flat_map(|o| [o.name().to_string(), format!("{}_bcast", o.name())])
                .collect();
            per_dtype(&stems)
        }
        "softmax.cu" => per_dtype(&names(&["softmax"])),
        "norm.cu" => per_dtype(&names(&[
            "layer_norm",
            "rms_norm",
            "add_rms_norm",
            "add_layer_norm",
        ])),
        "rope.cu" => per_dtype(&names(&["rope_interleaved", "rope_half"])),
        "embedding.cu" => per_dtype(&names(&["embedding"])),
        "reduce.cu" => {
            let stems: Vec<String> = ReduceOp::ALL
                .iter()
                .flat_map(|o| [format!("{}_rows", o.name()), format!("{}_cols", o.name())])
                .collect();
            per_dtype(&stems)
        }
        "conv.cu" => per_dtype(&names(&["conv2d"])),
        "pool.cu" => per_dtype(&names(&["max_pool2d", "avg_pool2d"])),
        "attention.cu" => per_dtype(&names(&["attention"])),
        "copy.cu" => {
            let mut v = per_dtype(&names(&["copy_strided", "copy_into"]));
            for (s, d) in [
                ("f32", "bf16"),
                ("bf16", "f32"),
                ("f32", "f16"),
                ("f16", "f32"),
                ("bf16", "f16"),
                ("f16", "bf16"),
                ("u32", "f32"),
                ("u32", "bf16"),
                ("u32", "f16"),
            ] {
                v.push(format!("cast_{s}_{d}"));
            }
            v
        }
        other => panic!("no expected entries written for kernels/{other}"),
    }
}

#[test]
fn kernels_list_every_file_in_the_kernels_folder() {
    let listed: BTreeSet<String> = KERNELS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        listed,
        files_in_kernels(".cu"),
        "tally_cuda::KERNELS vs kernels/*.cu"
    );
    let headers: BTreeSet<String> = HEADERS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        headers,
        files_in_kernels(".cuh"),
        "tally_cuda::HEADERS vs kernels/*.cuh"
    );
    for (file, _) in KERNELS {
        assert!(!expected_entries(file).is_empty());
    }
}

/// Every file compiles for both architectures, through a fresh PTX cache: NVRTC's output is
/// saved, the next process reads the same text back, and a cut file is compiled again.
#[test]
fn every_kernel_compiles_to_ptx_for_sm80_and_sm90() {
    if !nvrtc_or_skip() {
        return;
    }
    let cache = std::env::temp_dir().join(format!("tally-ptx-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    for arch in Arch::ALL {
        for (file, src) in KERNELS {
            let (ptx, origin) =
                cached_ptx(&cache, file, src, arch).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                origin,
                PtxOrigin::Compiled { not_kept: None },
                "kernels/{file}"
            );
            let target = format!(".target sm_{}", &arch.compute()["compute_".len()..]);
            assert!(
                ptx.contains(&target),
                "kernels/{file}: no `{target}` in its PTX"
            );
            let (again, origin) = cached_ptx(&cache, file, src, arch).unwrap();
            assert_eq!(
                (origin, again == ptx),
                (PtxOrigin::Cache, true),
                "kernels/{file}"
            );
            println!("kernels/{file} -> {arch}: {} bytes of PTX", ptx.len());
        }
    }
    // A cache file cut short (a full disk, a killed writer) is not trusted.
    let (file, src) = KERNELS[0];
    let path = ptx_cache_file(&cache, file, src, Arch::Sm90).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.find(".entry").unwrap()]).unwrap();
    let (ptx, origin) = cached_ptx(&cache, file, src, Arch::Sm90).unwrap();
    assert_eq!(
        (origin, ptx == text),
        (PtxOrigin::Compiled { not_kept: None }, true)
    );
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn every_kernel_ptx_has_the_expected_entry_symbols() {
    if !nvrtc_or_skip() {
        return;
    }
    for (file, src) in KERNELS {
        let ptx = compile_ptx(file, src, Arch::Sm80).unwrap_or_else(|e| panic!("{e}"));
        let found: BTreeSet<String> = ptx
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".visible .entry "))
            .map(|l| l.split('(').next().unwrap_or(l).trim().to_string())
            .collect();
        let expected: BTreeSet<String> = expected_entries(file).into_iter().collect();
        assert_eq!(found, expected, "kernels/{file}: entry symbols in its PTX");
        println!("kernels/{file}: {} entries", found.len());
    }
}

#[test]
fn an_unknown_header_is_named_in_the_error() {
    let err = tally_cuda::with_headers("x.cu", "#include \"nope.cuh\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "kernels/x.cu includes \"nope.cuh\", which is not in tally_cuda::HEADERS"
    );
}

/// The `static constexpr unsigned A = …, M = …[, F = …], S = …;` line of functor `name`
/// in `src`, as (add, mul, fma, special).
fn functor_counts(src: &str, name: &str) -> (u64, u64, u64, u64) {
    let head = format!("struct {name} {{ static constexpr unsigned ");
    let start = src
        .find(&head)
        .unwrap_or_else(|| panic!("no functor `{name}`"))
        + head.len();
    let decl = &src[start..start + src[start..].find(';').unwrap()];
    let get = |key: &str| -> u64 {
        decl.split(',')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix(&format!("{key} = ")))
            .map_or(0, |v| v.parse().unwrap())
    };
    (get("A"), get("M"), get("F"), get("S"))
}

fn source(file: &str) -> &'static str {
    KERNELS.iter().find(|(f, _)| *f == file).unwrap().1
}

#[test]
fn per_element_counts_in_the_kernels_equal_cost_rs() {
    for &op in UnaryOp::ALL {
        let w = tally_core::cost::unary_per_elem(op);
        let got = functor_counts(source("unary.cu"), &format!("{op:?}"));
        assert_eq!(got, (w.add, w.mul, w.fma, w.special), "unary.cu {op}");
    }
    for &op in BinaryOp::ALL {
        let w = tally_core::cost::binary_per_elem(op);
        let got = functor_counts(source("binary.cu"), &format!("{op:?}"));
        assert_eq!(got, (w.add, w.mul, w.fma, w.special), "binary.cu {op}");
    }
}
