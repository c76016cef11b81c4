//! The README's library example: run two ops in a region and print what each counted.
//! `cargo run --release -p tally --example quickstart`

use tally::{measure, scope, Device, Tensor};

fn main() -> tally::Result<()> {
    let x = Tensor::from_vec(vec![0.5f32; 8 * 64], [8, 64], Device::Cpu)?;
    let w = Tensor::from_vec(vec![0.1f32; 10 * 64], [10, 64], Device::Cpu)?;
    let (y, ledger) = measure(|| scope("head", || x.matmul(&w.t()?)?.softmax_last()));
    let y = y?;
    for r in ledger.records() {
        println!(
            "{:<6} {:<8} {:>7} FPO {:>5} special {:>6} bytes ({})",
            r.scope,
            r.op,
            r.work.fpo(),
            r.work.special,
            r.work.bytes(),
            r.source
        );
    }
    println!("output {:?}", y.dims());
    Ok(())
}
