//! `tally bench`: wall-clock per forward pass (median, min, max over `--repeat` passes after
//! one warm-up), timed outside the meter so recording's own cost is inside the figure. The
//! same command from a build with `--features uncounted` (counters compiled out) is the
//! other arm of `benches/counting_overhead.sh`.

use tally::core::{Result, COUNTING};

use crate::table::time;
use crate::workload::RunArgs;

/// Options of `tally bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Paced by a driver: each measured pass waits for a line on standard input and prints
    /// `pass_s=SECONDS` when it ends; the end of input ends the passes (`--repeat` is the
    /// most). `benches/counting_overhead.sh` runs a counted and an uncounted build this way,
    /// alternating pass by pass.
    #[arg(long)]
    lockstep: bool,
}

/// The median of `v` (mean of the middle two for an even count); 0 for none.
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let mut shape = args.run.shape()?;
    shape.lockstep = args.lockstep;
    // Whole passes are timed here: a GPU need not time each op with events.
    if let tally::core::Device::Cuda(n) = shape.device {
        tally_cuda::CudaDevice::get(n)?.set_kernel_timing(false);
    }
    let m = crate::workload::measure(args.run.model, &shape)?;
    let w = &m.pass_wall_s;
    let (lo, hi) = w
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    let med = median(w);
    println!(
        "{}: {} per pass (median of {}; min {}, max {}), {} examples per pass, counting {}",
        args.run.model.name(),
        time(med),
        w.len(),
        time(lo),
        time(hi),
        m.examples,
        if COUNTING { "on" } else { "compiled out" },
    );
    // One line for scripts: key=value, seconds.
    println!(
        "bench model={} counting={} passes={} median_s={med:.9} min_s={lo:.9} max_s={hi:.9}",
        args.run.model.name(),
        if COUNTING { "on" } else { "off" },
        w.len(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
