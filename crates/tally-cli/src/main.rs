//! `tally`: inspect checkpoints and profile models, with every FPO and byte counted.

mod bench;
mod calibrate;
mod dataset;
mod doc;
mod inspect;
mod kernels;
mod lockstep;
mod ncu;
mod output;
mod pareto;
mod plot;
mod price;
mod profile;
mod reconcile;
mod reconcile_gpu;
mod run;
mod table;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: tally::cpu::heap::Counting = tally::cpu::heap::Counting;

/// Tally: inference whose kernels count the work they execute.
#[derive(Parser)]
#[command(name = "tally", version, about)]
struct Cli {
    /// CPU worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List a safetensors checkpoint's tensors, dtypes, shapes, parameters and bytes.
    Inspect {
        /// A `.safetensors` file, a sharded `model.safetensors.index.json`, or a folder holding one.
        path: PathBuf,
    },
    /// Run a model on an input and print its answer with a one-screen cost summary.
    Run(run::Args),
    /// Run a model and print what every op cost (calls, FPO, bytes, time, GFLOP/s).
    Profile(profile::Args),
    /// Plot the digits width family's held-out accuracy against executed FPO per example (SVG).
    Pareto(pareto::Args),
    /// Measure this machine's ceilings (FMA peak, bf16 dot and AMX tiles, memory bandwidth) and save them.
    Calibrate(calibrate::Args),
    /// The price tag (Green AI, Equation 1): cost per example × D examples × H experiments.
    Price(price::Args),
    /// Set each op class against this machine's calibrated roofline (floor, efficiency, bound).
    Reconcile(reconcile::Args),
    /// Wall-clock per forward pass (median, min, max), recording included.
    Bench(bench::Args),
    /// Join a GPU run's per-op counts with Nsight Compute's hardware counters (gpu/ncu.sh).
    ReconcileGpu(reconcile_gpu::Args),
    /// Compile the CUDA kernels to PTX with NVRTC into the PTX cache (no GPU needed).
    Kernels(kernels::Args),
}

/// Lets a closed pipe (`tally inspect … | head`) end the process quietly, as it does for
/// other Unix tools, instead of panicking inside `println!`.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE and no Rust code relies on the ignored default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    // Freed activation buffers wait in the heap, not the kernel (see the function).
    tally::cpu::buffers::keep_freed_heap_pages();
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if let Err(e) = tally::set_num_threads(n) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Inspect { path } => inspect::run(&path),
        Command::Run(args) => run::run(&args),
        Command::Profile(args) => profile::run(&args),
        Command::Pareto(args) => pareto::run(&args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Price(args) => price::run(&args),
        Command::Reconcile(args) => reconcile::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::ReconcileGpu(args) => reconcile_gpu::run(&args),
        Command::Kernels(args) => kernels::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
