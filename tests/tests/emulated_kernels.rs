//! Tally's CUDA kernels run on the CPU: `crates/tally-cuda/tests/emulated/cuda_host.hpp`
//! supplies the CUDA built-ins (a block's threads are fibers; barriers, warp shuffles,
//! ballots and atomics behave as on a GPU for the kernels' logic), the emulated GPU's build
//! (`tally_tests::emulated_gpu`) compiles every `kernels/*.cu` against it, and
//! `tests/emulated/main.cpp`, linked with those objects, checks each kernel family's outputs
//! against a naive double reference and its counters against the work it executed. This is
//! what can be checked of the kernels one by one on a machine without a GPU; it says nothing
//! of their speed. (`tests/tests/cuda.rs` runs the whole backend on the same emulator.)
//!
//! Without a C++20 compiler or NVRTC it prints why and passes; with `TALLY_REQUIRE_CXX=1` or
//! `TALLY_REQUIRE_NVRTC=1` (CI) it fails instead.

use std::path::PathBuf;
use std::process::Command;

use tally_tests::emulated_gpu;

#[test]
fn every_kernel_family_runs_correctly_and_counts_what_it_executes_on_an_emulated_gpu() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("emulated-gpu");
    let Some(lib) = emulated_gpu::build_or_skip(&dir) else {
        return;
    };
    let cxx = emulated_gpu::compiler();
    let main = lib.join("kernel-cases.o");
    emulated_gpu::compile(&cxx, &emulated_gpu::sources().join("main.cpp"), &main).unwrap();
    let mut objects = emulated_gpu::driver_objects(&lib);
    objects.push(main);
    let exe = lib.join("kernel-cases");
    emulated_gpu::link(&cxx, &objects, &exe, false).unwrap();
    let run = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(
        run.status.success(),
        "emulated kernels failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("all emulated kernel cases passed"),
        "{stdout}"
    );
}
