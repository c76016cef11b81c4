//! Tally's CUDA kernels run on the CPU: `tests/emulated/cuda_host.hpp` supplies the CUDA
//! built-ins (a block's threads are real threads; barriers, warp shuffles, ballots and
//! atomics behave as on a GPU for the kernels' logic), g++ compiles every `kernels/*.cu`
//! against it, and `tests/emulated/main.cpp` checks each kernel family's outputs against a
//! naive double reference and its counters against the work it executed. This is what can
//! be checked of the kernels on a machine without a GPU; it says nothing of their speed.
//!
//! Without a C++20 compiler it prints why and passes; with `TALLY_REQUIRE_CXX=1` (CI) a
//! missing compiler fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The compiler: `$CXX`, else `g++`.
fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "g++".into())
}

fn cxx_or_skip(cxx: &str) -> bool {
    let found = Command::new(cxx)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("TALLY_REQUIRE_CXX").as_deref() == Ok("1") {
            panic!("TALLY_REQUIRE_CXX=1 but `{cxx} --version` did not run");
        }
        println!("skipping: no C++ compiler (`{cxx}`; set CXX) to build the emulated kernels");
    }
    found
}

/// Compiles `src` (C++, the emulation header forced in first) to the object `out`.
fn compile(cxx: &str, src: &Path, out: &Path, kernels: &Path, header: &Path) -> Result<(), String> {
    let o = Command::new(cxx)
        .args([
            "-std=c++20",
            "-O1",
            "-pthread",
            "-U_FORTIFY_SOURCE",
            "-DTALLY_HOST_EMULATION",
            "-w",
        ])
        .arg("-I")
        .arg(kernels)
        .arg("-include")
        .arg(header)
        .args(["-x", "c++", "-c"])
        .arg(src)
        .arg("-o")
        .arg(out)
        .output()
        .map_err(|e| format!("{cxx}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} did not compile:\n{}",
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

#[test]
fn every_kernel_family_runs_correctly_and_counts_what_it_executes_on_an_emulated_gpu() {
    let cxx = compiler();
    if !cxx_or_skip(&cxx) {
        return;
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kernels = here.join("../../kernels");
    let header = here.join("tests/emulated/cuda_host.hpp");
    let build = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("emulated-kernels");
    std::fs::create_dir_all(&build).unwrap();
    let mut sources: Vec<PathBuf> = tally_cuda::KERNELS
        .iter()
        .map(|(f, _)| kernels.join(f))
        .collect();
    sources.push(here.join("tests/emulated/main.cpp"));
    // Two compilers at a time (CI has two cores).
    let objects: Vec<PathBuf> = sources
        .iter()
        .map(|s| build.join(s.file_name().unwrap()).with_extension("o"))
        .collect();
    let jobs: Vec<(PathBuf, PathBuf)> = sources.into_iter().zip(objects.clone()).collect();
    for pair in jobs.chunks(2) {
        let errors: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|(src, obj)| s.spawn(|| compile(&cxx, src, obj, &kernels, &header)))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap().err())
                .collect()
        });
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
    let exe = build.join("emulated-kernels");
    let link = Command::new(&cxx)
        .arg("-pthread")
        .args(&objects)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        link.status.success(),
        "link: {}",
        String::from_utf8_lossy(&link.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(run.status.success(), "emulated kernels failed:\n{stdout}");
    assert!(
        stdout.contains("all emulated kernel cases passed"),
        "{stdout}"
    );
}
