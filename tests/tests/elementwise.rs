//! Unary functions, affine and broadcasting binary ops: values against f64 references,
//! executed work against the analytic count, and counts pinned for concrete shapes.

use proptest::prelude::*;
use tally_core::{BinaryOp, DType, UnaryOp, Work};
use tally_tensor::Tensor;
use tally_tests::{counted, input, make, ravel, unravel, Rng, Tolerance};

/// The math of each unary function, in f64.
fn unary_ref(op: UnaryOp, x: f64) -> f64 {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Relu6 => x.clamp(0.0, 6.0),
        UnaryOp::GeluErf => 0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt())),
        UnaryOp::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        }
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
    }
}

/// The input range each function is tested on (log, sqrt and 1/x need x > 0).
fn domain(op: UnaryOp) -> (f64, f64) {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => (0.1, 3.0),
        _ => (-3.0, 3.0),
    }
}

/// The tensor method under test, called by name (so each public method is exercised).
fn call_unary(op: UnaryOp, x: &Tensor) -> tally_core::Result<Tensor> {
    match op {
        UnaryOp::Neg => x.neg(),
        UnaryOp::Relu => x.relu(),
        UnaryOp::Relu6 => x.relu6(),
        UnaryOp::GeluErf => x.gelu_erf(),
        UnaryOp::GeluTanh => x.gelu_tanh(),
        UnaryOp::Silu => x.silu(),
        UnaryOp::Sigmoid => x.sigmoid(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.log(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Recip => x.recip(),
    }
}

/// The FPO convention per element, (add, mul, fma, special), written from the docs:
/// gelu_erf 0.5·x·(1 + erf(x·(1/√2))) is 3 mul + 1 add + erf; gelu_tanh
/// 0.5·x·(1 + tanh(c·x·(1 + 0.044715·x·x))) is 6 mul + 2 add + tanh; silu x·σ(x).
fn unary_convention(op: UnaryOp) -> [u64; 4] {
    match op {
        UnaryOp::Neg => [0, 1, 0, 0],
        UnaryOp::Relu => [1, 0, 0, 0], // a comparison counts as an add
        UnaryOp::Relu6 => [2, 0, 0, 0], // two comparisons
        UnaryOp::GeluErf => [1, 3, 0, 1],
        UnaryOp::GeluTanh => [2, 6, 0, 1],
        UnaryOp::Silu => [0, 1, 0, 1],
        UnaryOp::Sigmoid
        | UnaryOp::Tanh
        | UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Sqrt
        | UnaryOp::Recip => [0, 0, 0, 1],
    }
}

fn binary_ref(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
        BinaryOp::SiluMul => a / (1.0 + (-a).exp()) * b,
    }
}

fn call_binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> tally_core::Result<Tensor> {
    match op {
        BinaryOp::Add => a.add(b),
        BinaryOp::Sub => a.sub(b),
        BinaryOp::Mul => a.mul(b),
        BinaryOp::Div => a.div(b),
        BinaryOp::Maximum => a.maximum(b),
        BinaryOp::Minimum => a.minimum(b),
        BinaryOp::SiluMul => a.silu_mul(b),
    }
}

/// A random shape of rank 1..=4 with dims 1..=5.
fn shape(rng: &mut Rng) -> Vec<usize> {
    (0..1 + rng.below(4)).map(|_| 1 + rng.below(5)).collect()
}

fn check_unary(op: UnaryOp, dtype: DType, seed: u64) {
    let mut rng = Rng::new(seed);
    let dims = shape(&mut rng);
    let (lo, hi) = domain(op);
    let (x, xv) = input(&mut rng, &dims, dtype, lo, hi);
    let (y, w) = counted(|| call_unary(op, &x));
    assert_eq!(y.dims(), &dims[..]);
    let want: Vec<f64> = xv.iter().map(|&v| unary_ref(op, v)).collect();
    Tolerance::of(dtype).assert_close(
        &y.to_f64_vec().unwrap(),
        &want,
        &format!("{op} {dtype} {dims:?}"),
    );
    let n = xv.len() as u64;
    let [add, mul, fma, special] = unary_convention(op);
    let size = dtype.size_in_bytes() as u64;
    assert_eq!(
        w,
        Work {
            add: add * n,
            mul: mul * n,
            fma: fma * n,
            special: special * n,
            bytes_read: n * size,
            bytes_written: n * size
        },
        "{op} {dtype} {dims:?}"
    );
}

proptest! {
    #![proptest_config(tally_tests::config())]

    #[test]
    fn unary_f32_matches_reference(seed in any::<u64>()) {
        for &op in UnaryOp::ALL {
            check_unary(op, DType::F32, seed);
        }
    }

    #[test]
    fn unary_f16_bf16_match_reference(seed in any::<u64>()) {
        for &op in UnaryOp::ALL {
            check_unary(op, DType::F16, seed);
            check_unary(op, DType::BF16, seed);
        }
    }

    #[test]
    fn unary_on_transposed_view_matches_reference(seed in any::<u64>(), m in 1usize..6, n in 1usize..6) {
        let mut rng = Rng::new(seed);
        let (x, xv) = input(&mut rng, &[m, n], DType::F32, -3.0, 3.0);
        let (y, w) = counted(|| x.t()?.gelu_tanh());
        let want: Vec<f64> = (0..m * n).map(|i| unary_ref(UnaryOp::GeluTanh, xv[(i % m) * n + i / m])).collect();
        Tolerance::F32.assert_close(&y.to_f64_vec().unwrap(), &want, "gelu_tanh of x.t()");
        assert_eq!(w.bytes_read, (m * n * 4) as u64); // every element of the view once
    }

    #[test]
    fn affine_matches_reference(seed in any::<u64>(), a in -3.0f64..3.0, b in -3.0f64..3.0) {
        let mut rng = Rng::new(seed);
        let dims = shape(&mut rng);
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let (x, xv) = input(&mut rng, &dims, dtype, -3.0, 3.0);
            let (y, w) = counted(|| x.affine(a, b));
            // The kernel takes the scalars as f32; the reference uses the same values.
            let (a32, b32) = (a as f32 as f64, b as f32 as f64);
            let want: Vec<f64> = xv.iter().map(|&v| a32 * v + b32).collect();
            Tolerance::of(dtype).assert_close(&y.to_f64_vec().unwrap(), &want, "affine");
            assert_eq!(w.fma, xv.len() as u64); // one FMA per element
        }
    }

    #[test]
    fn binary_broadcast_matches_reference(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let out = shape(&mut rng);
        // Each operand: a suffix of the output's dims, some of them set to 1.
        let operand = |rng: &mut Rng| -> Vec<usize> {
            let rank = 1 + rng.below(out.len());
            out[out.len() - rank..].iter().map(|&d| if rng.coin() { d } else { 1 }).collect()
        };
        let (ad, bd) = (operand(&mut rng), operand(&mut rng));
        let rank = ad.len().max(bd.len());
        let want_dims: Vec<usize> = (0..rank)
            .map(|i| {
                let pick = |d: &[usize]| if i + d.len() >= rank { d[i + d.len() - rank] } else { 1 };
                pick(&ad).max(pick(&bd))
            })
            .collect();
        for dtype in [DType::F32, DType::BF16] {
            let (a, av) = input(&mut rng, &ad, dtype, -3.0, 3.0);
            let (b, bv) = input(&mut rng, &bd, dtype, 0.5, 3.0); // away from 0 for division
            for &op in BinaryOp::ALL {
                let (y, w) = counted(|| call_binary(op, &a, &b));
                assert_eq!(y.dims(), &want_dims[..], "{op} {ad:?} {bd:?}");
                let at = |d: &[usize], v: &[f64], idx: &[usize]| {
                    let off = idx.len() - d.len();
                    let own: Vec<usize> = d.iter().enumerate().map(|(i, &s)| if s == 1 { 0 } else { idx[off + i] }).collect();
                    v[ravel(&own, d)]
                };
                let want: Vec<f64> = (0..y.elem_count())
                    .map(|f| {
                        let idx = unravel(f, &want_dims);
                        binary_ref(op, at(&ad, &av, &idx), at(&bd, &bv, &idx))
                    })
                    .collect();
                Tolerance::of(dtype).assert_close(&y.to_f64_vec().unwrap(), &want, &format!("{op} {ad:?} {bd:?} {dtype}"));
                let size = dtype.size_in_bytes();
                // Each distinct input element read once, each output written once.
                assert_eq!(w.bytes_read, ((av.len() + bv.len()) * size) as u64);
                assert_eq!(w.bytes_written, (y.elem_count() * size) as u64);
            }
        }
    }
}

#[test]
fn unary_counts_pinned() {
    let x = make(&[0.5; 24], &[2, 3, 4], DType::F32);
    let (_, w) = counted(|| x.gelu_erf());
    assert_eq!(w.add, 24); // 1 + erf
    assert_eq!(w.mul, 3 * 24); // 0.5·x·(…), x·(1/√2)
    assert_eq!(w.special, 24); // erf
    assert_eq!(w.fpo(), 4 * 24);
    assert_eq!(w.bytes_read, 24 * 4); // x, f32
    assert_eq!(w.bytes_written, 24 * 4);

    let (_, w) = counted(|| x.gelu_tanh());
    assert_eq!((w.add, w.mul, w.special), (2 * 24, 6 * 24, 24));
    let (_, w) = counted(|| x.silu());
    assert_eq!((w.add, w.mul, w.special), (0, 24, 24));
    let (_, w) = counted(|| x.relu());
    assert_eq!((w.add, w.mul, w.special), (24, 0, 0)); // max(x, 0) is one comparison
    let (_, w) = counted(|| x.neg());
    assert_eq!((w.add, w.mul, w.special), (0, 24, 0));
    for f in [
        Tensor::sigmoid,
        Tensor::tanh,
        Tensor::exp,
        Tensor::log,
        Tensor::sqrt,
        Tensor::recip,
    ] {
        let (_, w) = counted(|| f(&x));
        assert_eq!(
            w,
            Work {
                special: 24,
                bytes_read: 24 * 4,
                bytes_written: 24 * 4,
                ..Work::ZERO
            }
        );
    }
    let h = make(&[0.5; 24], &[2, 3, 4], DType::BF16);
    let (_, w) = counted(|| h.exp());
    assert_eq!((w.bytes_read, w.bytes_written), (24 * 2, 24 * 2)); // bf16 is 2 bytes
}

#[test]
fn unary_of_broadcast_view_reads_distinct_elements_once() {
    let x = make(&[1.0, 2.0, 3.0, 4.0], &[1, 4], DType::F32);
    let (y, w) = counted(|| x.broadcast_as([3, 4])?.exp());
    assert_eq!(y.dims(), &[3, 4]);
    assert_eq!(w.special, 3 * 4);
    assert_eq!(w.bytes_read, 4 * 4); // the stride-0 dim counts once
    assert_eq!(w.bytes_written, 3 * 4 * 4);
}

#[test]
fn affine_counts_pinned() {
    let x = make(&[1.0; 15], &[3, 5], DType::F16);
    let (y, w) = counted(|| x.affine(2.0, -1.0));
    assert_eq!(y.to_f64_vec().unwrap(), vec![1.0; 15]);
    assert_eq!(
        w,
        Work {
            fma: 15,
            bytes_read: 15 * 2,
            bytes_written: 15 * 2,
            ..Work::ZERO
        }
    );
    assert_eq!(w.fpo(), 2 * 15); // an FMA is 2 FPO
}

#[test]
fn binary_counts_pinned() {
    // a (2, 3, 4) ∘ b (3, 1) → (2, 3, 4): 24 outputs, b's 3 elements read once.
    let a = make(&[1.0; 24], &[2, 3, 4], DType::F32);
    let b = make(&[2.0; 3], &[3, 1], DType::F32);
    let expect = |add: u64, mul: u64, special: u64| Work {
        add,
        mul,
        special,
        bytes_read: (24 + 3) * 4, // a + b, f32
        bytes_written: 24 * 4,
        ..Work::ZERO
    };
    for &op in BinaryOp::ALL {
        let (y, w) = counted(|| call_binary(op, &a, &b));
        assert_eq!(y.dims(), &[2, 3, 4]);
        let want = match op {
            BinaryOp::Add | BinaryOp::Sub => expect(24, 0, 0),
            BinaryOp::Maximum | BinaryOp::Minimum => expect(24, 0, 0), // comparisons count as adds
            BinaryOp::Mul => expect(0, 24, 0),
            BinaryOp::Div => expect(0, 0, 24), // division is special
            BinaryOp::SiluMul => expect(0, 48, 24), // silu's mul and sigmoid, then · b
        };
        assert_eq!(w, want, "{op}");
    }
    // Both operands broadcast: (4, 1) + (1, 5) → (4, 5).
    let c = make(&[1.0; 4], &[4, 1], DType::BF16);
    let d = make(&[1.0; 5], &[1, 5], DType::BF16);
    let (y, w) = counted(|| c.add(&d));
    assert_eq!(y.dims(), &[4, 5]);
    assert_eq!(
        w,
        Work {
            add: 20,
            bytes_read: (4 + 5) * 2,
            bytes_written: 20 * 2,
            ..Work::ZERO
        }
    );
}

#[test]
fn binary_on_transposed_operands() {
    // Non-unit last strides on both sides take the strided path.
    let mut rng = Rng::new(7);
    let (a, av) = input(&mut rng, &[5, 3], DType::F32, -1.0, 1.0);
    let (b, bv) = input(&mut rng, &[5, 3], DType::F32, -1.0, 1.0);
    let (y, w) = counted(|| a.t()?.sub(&b.t()?));
    let want: Vec<f64> = (0..15)
        .map(|f| av[(f % 5) * 3 + f / 5] - bv[(f % 5) * 3 + f / 5])
        .collect();
    Tolerance::F32.assert_close(&y.to_f64_vec().unwrap(), &want, "a.t() - b.t()");
    assert_eq!(w.add, 15);
}

#[test]
fn large_shapes_take_the_parallel_path() {
    // Big enough that kernels split the work over the thread pool (over 256k element-ops).
    let mut rng = Rng::new(99);
    let (x, xv) = input(&mut rng, &[400, 1024], DType::F32, -3.0, 3.0);
    for op in [UnaryOp::GeluErf, UnaryOp::Silu, UnaryOp::Neg] {
        let (y, w) = counted(|| call_unary(op, &x));
        let want: Vec<f64> = xv.iter().map(|&v| unary_ref(op, v)).collect();
        Tolerance::F32.assert_close(&y.to_f64_vec().unwrap(), &want, &format!("{op} large"));
        assert_eq!(w.bytes_written, 400 * 1024 * 4);
    }
    let (y, w) = counted(|| x.affine(0.5, 1.0));
    Tolerance::F32.assert_close(
        &y.to_f64_vec().unwrap(),
        &xv.iter().map(|v| 0.5 * v + 1.0).collect::<Vec<_>>(),
        "affine large",
    );
    assert_eq!(w.fma, 400 * 1024);
    let (b, bv) = input(&mut rng, &[1024], DType::F32, 0.5, 2.0);
    let (y, w) = counted(|| x.div(&b));
    let want: Vec<f64> = xv
        .iter()
        .enumerate()
        .map(|(i, v)| v / bv[i % 1024])
        .collect();
    Tolerance::F32.assert_close(&y.to_f64_vec().unwrap(), &want, "div large");
    assert_eq!(
        w,
        Work {
            special: 400 * 1024,
            bytes_read: (400 * 1024 + 1024) * 4,
            bytes_written: 400 * 1024 * 4,
            ..Work::ZERO
        }
    );
    let (y, _) = counted(|| x.t()?.maximum(&b.reshape([1024, 1])?));
    let want: Vec<f64> = (0..400 * 1024)
        .map(|f| xv[(f % 400) * 1024 + f / 400].max(bv[f / 400]))
        .collect();
    assert_eq!(
        y.to_f64_vec().unwrap(),
        want,
        "maximum of a transposed view, large"
    );
}
