//! Builds the emulated GPU (`tally_tests::emulated_gpu`: a stand-in CUDA driver and cuBLAS
//! that run Tally's kernels on the CPU) into a folder and prints the folder, for scripts:
//!
//! ```text
//! lib=$(cargo run --release -q -p tally-tests --bin build-emulated-gpu -- target/emulated-gpu)
//! LD_LIBRARY_PATH="$lib:$(kernels/nvrtc-env.sh)" target/release/tally bench minilm --device cuda
//! ```
//!
//! `gpu/dry-run.sh --emulated` runs the GPU scripts this way.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: build-emulated-gpu DIR (the folder for libcuda.so and libcublas.so)");
        return ExitCode::from(2);
    };
    match tally_tests::emulated_gpu::build(&dir) {
        Ok(lib) => {
            let lib = lib.canonicalize().unwrap_or(lib);
            println!("{}", lib.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("build-emulated-gpu: {e}");
            ExitCode::FAILURE
        }
    }
}
