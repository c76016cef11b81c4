//! Accuracy of every variant against f64 references: a dense sweep of ~1e6 points per
//! function, powers of ten down to 1e-30 and up to 1e30, ±0, ±inf and NaN.

use super::{funcs, map_with, softmax_row_with, Func};
use crate::gemm::Isa;

/// Outputs at or above this magnitude are held to a relative bound; below it (where the
/// f32 result is near or in the subnormal range) to [`ABS_TINY`] absolute.
const REL_FLOOR: f64 = 1e-36;
/// Absolute bound for outputs below [`REL_FLOOR`].
const ABS_TINY: f64 = 1e-40;

/// Every ISA variant, those this host lacks reported and skipped.
fn variants() -> Vec<Isa> {
    let have = Isa::available();
    for isa in [Isa::Avx512, Isa::Avx2] {
        if !have.contains(&isa) {
            println!("skipping vmath {}: this host lacks it", isa.name());
        }
    }
    have
}

/// The f64 reference of each function (forms exact in the tails: erfc, x·σ(2u)).
fn reference(f: Func, x: f64) -> f64 {
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    match f {
        Func::Exp => x.exp(),
        Func::Tanh => x.tanh(),
        Func::Sigmoid => sigmoid(x),
        Func::Silu => x * sigmoid(x),
        Func::GeluErf => 0.5 * x * libm::erfc(-x / std::f64::consts::SQRT_2),
        Func::GeluTanh => {
            let u = (2.0 / std::f64::consts::PI).sqrt() * x * (1.0 + 0.044715 * x * x);
            x * sigmoid(2.0 * u)
        }
    }
}

/// The dense sweep range of each function: where its output is neither 0 nor saturated.
fn range(f: Func) -> (f32, f32) {
    match f {
        Func::Exp => (-104.0, 89.0),
        Func::Tanh => (-10.0, 10.0),
        Func::Sigmoid | Func::Silu => (-105.0, 20.0),
        Func::GeluErf => (-14.5, 8.0),
        Func::GeluTanh => (-12.0, 8.0),
    }
}

/// ~1e6 evenly spaced points of `range`, ±10^k for k in −30..=30, ±0, ±inf, NaN.
fn inputs(f: Func) -> Vec<f32> {
    const N: usize = 1 << 20;
    let (lo, hi) = range(f);
    let mut v: Vec<f32> = (0..=N)
        .map(|i| lo + (hi - lo) * (i as f32 / N as f32))
        .collect();
    for k in -30..=30 {
        for m in [1.0f32, 2.5, 7.0] {
            let p = m * 10f32.powi(k);
            v.extend([p, -p]);
        }
    }
    v.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
    ]);
    v
}

/// Largest relative error of `got` against the reference over `xs` (and the input that
/// gave it), asserting NaN/inf behaviour and the absolute bound on tiny outputs.
fn max_rel(f: Func, isa: Isa, xs: &[f32], got: &[f32]) -> (f64, f32) {
    let mut worst = (0f64, 0f32);
    for (&x, &y) in xs.iter().zip(got) {
        let r = reference(f, x as f64);
        let (y64, r32) = (y as f64, r as f32);
        if r.is_nan() || !r32.is_finite() {
            let same = (r.is_nan() && y.is_nan()) || r32 == y;
            assert!(same, "{f:?} {}: f({x}) = {y}, want {r32}", isa.name());
            continue;
        }
        assert!(
            y.is_finite(),
            "{f:?} {}: f({x}) = {y}, want {r}",
            isa.name()
        );
        if r.abs() < REL_FLOOR {
            let e = (y64 - r).abs();
            assert!(
                e <= ABS_TINY,
                "{f:?} {}: f({x}) = {y}, want {r}",
                isa.name()
            );
            continue;
        }
        let e = (y64 - r).abs() / r.abs();
        if e > worst.0 {
            worst = (e, x);
        }
    }
    worst
}

/// Relative bound per function: 2e-6, except gelu_tanh, whose polynomial argument u
/// carries ~3 roundings that e^{-2u} multiplies by |2u| (up to ~90) where the output is
/// tiny (x < −5); its bound is set for that tail.
fn bound(f: Func) -> f64 {
    match f {
        Func::GeluTanh => 3e-5,
        _ => 2e-6,
    }
}

#[test]
fn functions_match_f64_on_every_variant() {
    for isa in variants() {
        for f in [
            Func::Exp,
            Func::Tanh,
            Func::Sigmoid,
            Func::Silu,
            Func::GeluErf,
            Func::GeluTanh,
        ] {
            let xs = inputs(f);
            let mut got = vec![0f32; xs.len()];
            map_with(isa, f, &xs, &mut got);
            let (e, at) = max_rel(f, isa, &xs, &got);
            println!(
                "vmath {:>8} {f:?}: max rel error {e:.2e} at x = {at}",
                isa.name()
            );
            assert!(e <= bound(f), "{f:?} {}: {e:e} at {at}", isa.name());
        }
    }
}

#[test]
fn erfc_matches_f64_on_every_variant() {
    // erfc(a/√2) for a in [0, 14]: the tail gelu_erf is built on.
    for isa in variants() {
        let xs: Vec<f32> = (0..=1 << 20)
            .map(|i| 14.0 * i as f32 / (1 << 20) as f32)
            .collect();
        let mut got = vec![0f32; xs.len()];
        lanewise_map(isa, Lanewise::ErfcScaled, &xs, &mut got);
        let mut worst = (0f64, 0f32);
        for (&a, &y) in xs.iter().zip(&got) {
            let r = libm::erfc(a as f64 / std::f64::consts::SQRT_2);
            if r < REL_FLOOR {
                continue;
            }
            let e = (y as f64 - r).abs() / r;
            if e > worst.0 {
                worst = (e, a);
            }
        }
        println!(
            "vmath {:>8} erfc(a/√2): max rel error {:.2e} at a = {}",
            isa.name(),
            worst.0,
            worst.1
        );
        assert!(
            worst.0 <= 2e-6,
            "erfc {}: {:e} at {}",
            isa.name(),
            worst.0,
            worst.1
        );
    }
}

/// A function of `funcs.rs` that no [`Func`] maps, to test on its own.
#[derive(Clone, Copy)]
enum Lanewise {
    /// erfc(a/√2) (`funcs::erfc_of_scaled`).
    ErfcScaled,
    /// eˣ for a softmax's shifted scores (`funcs::exp_shifted`).
    ExpShifted,
}

/// `f` over a slice (whole registers) with the `isa` variant.
fn lanewise_map(isa: Isa, f: Lanewise, x: &[f32], out: &mut [f32]) {
    use super::lanes::{F32s, Portable};
    #[inline(always)]
    fn run<V: F32s>(f: Lanewise, x: &[f32], out: &mut [f32]) {
        for (xs, os) in x.chunks_exact(V::LANES).zip(out.chunks_exact_mut(V::LANES)) {
            match f {
                Lanewise::ErfcScaled => funcs::erfc_of_scaled(V::load(xs)).store(os),
                Lanewise::ExpShifted => funcs::exp_shifted(V::load(xs)).store(os),
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    fn avx512(f: Lanewise, x: &[f32], out: &mut [f32]) {
        run::<super::x86::Avx512>(f, x, out)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn avx2(f: Lanewise, x: &[f32], out: &mut [f32]) {
        run::<super::x86::Avx2>(f, x, out)
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which detected AVX-512F and FMA.
        Isa::Avx512 => unsafe { avx512(f, x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2 and FMA were detected.
        Isa::Avx2 => unsafe { avx2(f, x, out) },
        _ => run::<Portable>(f, x, out),
    }
}

/// The softmax's exponent over the shifted scores it sees (x ≤ 0, and a hair above from
/// rounding), past the underflow to 0, and at −inf and NaN: within 2e-7 of f64 where the
/// result is normal, 0 below, NaN kept.
#[test]
fn the_softmax_exponent_matches_f64_on_every_variant() {
    let mut xs: Vec<f32> = (0..=1 << 18)
        .map(|i| -120.0 * i as f32 / (1 << 18) as f32)
        .collect();
    xs.extend([1e-6, f32::NEG_INFINITY, f32::NAN, -0.0]);
    xs.resize(xs.len().next_multiple_of(16), -1.0);
    for isa in variants() {
        let mut got = vec![0f32; xs.len()];
        lanewise_map(isa, Lanewise::ExpShifted, &xs, &mut got);
        for (&x, &y) in xs.iter().zip(&got) {
            let r = (x as f64).exp();
            let ok = if x.is_nan() {
                y.is_nan()
            } else if r < f32::MIN_POSITIVE as f64 {
                // A subnormal (or zero) result: within one subnormal step, never negative.
                y >= 0.0 && (y as f64 - r).abs() <= 2f64.powi(-149)
            } else {
                ((y as f64 - r) / r).abs() <= 2e-7
            };
            assert!(ok, "exp_shifted {}: exp({x}) = {y}, want {r}", isa.name());
        }
    }
}

#[test]
fn softmax_rows_match_f64_on_every_variant() {
    for isa in variants() {
        // Lengths around one and four register widths, so whole groups of four registers,
        // single registers and tails all run; scales 1, an attention's 1/√32, −2 and 0.
        for n in [
            1usize, 3, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 128, 129, 200,
        ] {
            for scale in [1.0f32, 0.176_776_7, -2.0, 0.0] {
                let x: Vec<f32> = (0..n)
                    .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.7)
                    .collect();
                let sx: Vec<f64> = x.iter().map(|&v| scale as f64 * v as f64).collect();
                let max = sx.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = sx.iter().map(|&v| (v - max).exp()).collect();
                let s: f64 = e.iter().sum();
                let mut row = x.clone();
                softmax_row_with(isa, &mut row, scale);
                for (&y, &r) in row.iter().zip(&e) {
                    let r = r / s;
                    assert!(
                        (y as f64 - r).abs() <= 1e-6 * r.max(1e-30) + 1e-12,
                        "softmax {} n={n} scale {scale}: {y} vs {r}",
                        isa.name()
                    );
                }
            }
        }
    }
}

/// Not a check: prints the error of the scalar libm definitions (`unary::apply`, the path
/// these functions replaced) over the same inputs, for comparison.
#[test]
fn scalar_definitions_for_comparison() {
    use tally_core::UnaryOp;
    for (f, op) in [
        (Func::Exp, UnaryOp::Exp),
        (Func::Tanh, UnaryOp::Tanh),
        (Func::Sigmoid, UnaryOp::Sigmoid),
        (Func::Silu, UnaryOp::Silu),
        (Func::GeluErf, UnaryOp::GeluErf),
        (Func::GeluTanh, UnaryOp::GeluTanh),
    ] {
        let mut worst = (0f64, 0f32);
        for x in inputs(f) {
            let (r, y) = (reference(f, x as f64), crate::unary::apply(op, x) as f64);
            if (r as f32).is_finite() && r.abs() >= REL_FLOOR {
                let e = (y - r).abs() / r.abs();
                if e > worst.0 {
                    worst = (e, x);
                }
            }
        }
        println!(
            "scalar libm {f:?}: max rel error {:.2e} at x = {}",
            worst.0, worst.1
        );
    }
}
