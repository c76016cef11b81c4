//! Elementwise ops alone and warm: gelu_erf, exp, silu and relu over 16 Ki, 192 Ki and
//! 1.5 Mi elements (in L1/L2, in L2, beyond it), in f32 and bf16, on this process's pool
//! (set `--threads`), printing the best of 5 timed loops in ns per element.
//!
//! `cargo run --release -p tally-benches --example unary_alone [-- --threads N]`

use std::time::Instant;

use tally::{DType, Device, Result, Tensor};

/// Values in [-4, 4), the range activations live in.
fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 8192) as f32 - 4096.0) / 1024.0)
        .collect()
}

fn apply(name: &str, t: &Tensor) -> Result<Tensor> {
    match name {
        "gelu_erf" => t.gelu_erf(),
        "exp" => t.exp(),
        "silu" => t.silu(),
        _ => t.relu(),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        let n = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(1);
        tally::set_num_threads(n)?;
    }
    println!("threads: {}", tally::num_threads());
    println!("| dtype | elements | gelu_erf | exp | silu | relu |");
    println!("|---|---|---|---|---|---|");
    for dtype in [DType::F32, DType::BF16] {
        for n in [16 << 10, 192 << 10, 1536 << 10] {
            let t = Tensor::from_slice(&values(n), [n], Device::Cpu)?.to_dtype(dtype)?;
            let mut row = format!("| {} | {n} |", dtype.name());
            for name in ["gelu_erf", "exp", "silu", "relu"] {
                for _ in 0..10 {
                    apply(name, &t)?;
                }
                let reps = (32 << 20) / n;
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let start = Instant::now();
                    for _ in 0..reps {
                        std::hint::black_box(apply(name, &t)?);
                    }
                    best = best.min(start.elapsed().as_secs_f64() / reps as f64);
                }
                row += &format!(" {:.3} ns |", best * 1e9 / n as f64);
            }
            println!("{row}");
        }
    }
    Ok(())
}
