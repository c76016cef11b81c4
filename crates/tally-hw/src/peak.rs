//! Compute ceilings, measured: independent register-resident FMA chains (no memory
//! traffic) per instruction set and thread count, and AVX-512 BF16 dot products and AMX
//! bf16 tile products where the CPU has them. Best of several repeats.

use crate::profile::{Figure, Skipped};
use crate::{best_rate, Effort};

/// The instruction sets an f32 FMA peak is measured for: the same set, detected the same
/// way, as the GEMM micro-kernels choose from.
pub use tally_cpu::gemm::Isa;

use tally_cpu::gemm::chains::{self, run_chains, CHAINS};

/// f32 FMA peak of `isa` on `threads` threads, in GFLOP/s (an FMA counts 2 FPO).
pub fn fma_peak(isa: Isa, threads: usize, effort: &Effort) -> Figure {
    let fpo_per_thread = effort.peak_iters as f64 * chains::fma_fpo_per_iter(isa);
    let work = fpo_per_thread * threads as f64;
    let rate = best_rate(threads, effort.repeats, work, |_| {
        run_chains(isa, effort.peak_iters)
    });
    let op = if isa == Isa::Portable {
        "multiply + add (unfused)"
    } else {
        "FMA"
    };
    Figure {
        quantity: "peak".into(),
        kernel: "f32_fma".into(),
        isa: isa.name().into(),
        threads,
        value: rate / 1e9,
        unit: "GFLOP/s".into(),
        method: format!(
            "{CHAINS}×{} f32 independent register-resident {op} chains per thread, {} iterations, \
             2 FPO per lane-op, best of {}",
            isa.lanes(),
            effort.peak_iters,
            effort.repeats
        ),
    }
}

/// Whether the host has AVX-512 BF16 (`vdpbf16ps`).
pub fn has_bf16_dot() -> bool {
    tally_cpu::gemm::Bf16Isa::available().contains(&tally_cpu::gemm::Bf16Isa::Avx512Bf16)
}

/// bf16 dot-product peak (`vdpbf16ps`: 16 lanes × 2 products, 64 FPO per instruction)
/// on `threads` threads in GFLOP/s, or why it was skipped.
pub fn bf16_peak(threads: usize, effort: &Effort) -> Result<Figure, Skipped> {
    #[cfg(target_arch = "x86_64")]
    if has_bf16_dot() {
        let per_thread = chains::DOT_BF16_FPO_PER_ITER * effort.peak_iters as f64;
        let rate = best_rate(threads, effort.repeats, per_thread * threads as f64, |_| {
            // SAFETY: `has_bf16_dot` (`Bf16Isa::available`) found AVX-512F and AVX-512 BF16.
            unsafe { chains::dot_chains_bf16(effort.peak_iters) }
        });
        return Ok(Figure {
            quantity: "peak".into(),
            kernel: "bf16_dot".into(),
            isa: "avx512bf16".into(),
            threads,
            value: rate / 1e9,
            unit: "GFLOP/s".into(),
            method: format!(
                "{} independent register-resident vdpbf16ps zmm chains per thread, {} \
                 iterations, 64 FPO per instruction (32 bf16 products + 32 f32 adds), best of {}",
                CHAINS, effort.peak_iters, effort.repeats
            ),
        });
    }
    let _ = (threads, effort);
    Err(Skipped {
        what: "bf16_dot peak".into(),
        reason: "the CPU lacks AVX-512 BF16 (avx512bf16 not detected)".into(),
    })
}

/// AMX bf16 tile-product peak (`tdpbf16ps` on register-resident tiles: 16·16·32
/// products, 16384 FPO per instruction) on `threads` threads in GFLOP/s, or why it was
/// skipped.
pub fn amx_peak(threads: usize, effort: &Effort) -> Result<Figure, Skipped> {
    use tally_cpu::gemm::amx;
    #[cfg(target_arch = "x86_64")]
    if amx::available() {
        // A tile product is 256× the work of one FMA lane-op: fewer iterations suffice.
        let iters = (effort.peak_iters / 16).max(1);
        let per_thread = amx::CHAIN_FPO_PER_ITER * iters as f64;
        let rate = best_rate(threads, effort.repeats, per_thread * threads as f64, |_| {
            // SAFETY: `available` found AMX-TILE and AMX-BF16 and Linux granted the state.
            unsafe { amx::tile_chains(iters) }
        });
        return Ok(Figure {
            quantity: "peak".into(),
            kernel: "bf16_amx".into(),
            isa: "amx-bf16".into(),
            threads,
            value: rate / 1e9,
            unit: "GFLOP/s".into(),
            method: format!(
                "4 independent register-resident tdpbf16ps tile chains per thread, {iters} \
                 iterations, 16384 FPO per instruction (16·16·32 bf16 products and f32 adds), \
                 best of {}",
                effort.repeats
            ),
        });
    }
    let _ = (threads, effort);
    Err(Skipped {
        what: "bf16_amx peak".into(),
        reason: "no AMX bf16 here (the CPU lacks AMX-TILE/AMX-BF16, or Linux refused the tile \
                 state)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_available_isa_measures_a_positive_peak() {
        let effort = Effort {
            peak_iters: 10_000,
            repeats: 1,
            ..Effort::quick()
        };
        for isa in Isa::available() {
            let f = fma_peak(isa, 1, &effort);
            assert!(f.value > 0.0, "{isa:?}: {f:?}");
        }
        for peak in [bf16_peak(1, &effort), amx_peak(1, &effort)] {
            match peak {
                Ok(f) => assert!(f.value > 0.0, "{f:?}"),
                Err(s) => eprintln!("skipped: {}", s.reason),
            }
        }
    }
}
