//! Parity with candle (CPU): the same inputs and weights through Tally and through
//! candle-core / candle-nn 0.11, outputs held to the suite's per-dtype [`Tolerance`].
//! Covers matmul (plain, transposed rhs view, batched broadcast), Linear, softmax, layer
//! and RMS norm, unary and broadcasting binary ops, sum/max/argmax, embedding, conv2d,
//! pooling, rotary embedding in both pairings, and the shipped digits MLP end to end.
//!
//! candle is a peer, not an f64 reference: a tolerance here must cover both libraries'
//! f32 arithmetic. Most of candle's bf16 CPU kernels compute in f32 and round once, as
//! Tally's do, and are compared as they are. A few evaluate in bf16 arithmetic, rounding
//! every intermediate: tanh-GELU (`1 + tanh(…)` cancels to 0 near x ≈ −3), RoPE (the
//! difference of two rounded products), and softmax, sum and avg_pool2d (a bf16 running
//! sum). Against an f64 reference those miss `Tolerance::BF16` by up to 5× (13× for a
//! sum of 6 terms in [−2, 2]) while Tally stays within 0.4 of it, so for them the bf16 peer is candle's f32 kernel on the same bf16 inputs, rounded
//! to bf16 ([`in_f32`]); candle's own bf16 softmax is also checked, under a bound that
//! says why it is looser. candle has no bf16 conv2d on CPU; it goes through [`in_f32`] too.

use candle_core::{DType as CDType, Device as CDevice, Module, Tensor as CTensor};
use half::bf16;
use tally_core::backend::{Conv2dParams, Pool2dParams, PoolKind, RopeStyle};
use tally_core::{DType, UnaryOp};
use tally_models::digits::{Digits, DigitsMlp};
use tally_nn::{Embedding, Linear};
use tally_tensor::Tensor;
use tally_tests::{input, make, Rng, Tolerance};

/// Fixed seeds: every test runs each of them, and a failure names the seed.
const SEEDS: [u64; 3] = [1, 7, 2024];
const FLOATS: [DType; 2] = [DType::F32, DType::BF16];
const EPS: f64 = 1e-5;

/// The same values as a candle CPU tensor of the same dtype and shape.
fn to_candle(t: &Tensor) -> CTensor {
    let dims = t.dims().to_vec();
    let dev = &CDevice::Cpu;
    match t.dtype() {
        DType::F32 => CTensor::from_vec(t.to_vec::<f32>().unwrap(), dims, dev),
        DType::BF16 => CTensor::from_vec(t.to_vec::<bf16>().unwrap(), dims, dev),
        DType::U32 => CTensor::from_vec(t.to_vec::<u32>().unwrap(), dims, dev),
        DType::I64 => CTensor::from_vec(t.to_vec::<i64>().unwrap(), dims, dev),
        other => panic!("no candle twin for {other}"),
    }
    .expect("building the candle twin")
}

/// A candle tensor's elements widened to f64 (exact for f32, bf16 and u32).
fn candle_values(t: &CTensor) -> Vec<f64> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(CDType::F64))
        .and_then(|t| t.to_vec1::<f64>())
        .expect("reading a candle tensor back")
}

/// Holds Tally's output to candle's: same dims, same dtype, values within `tol`.
fn check(got: &Tensor, want: &CTensor, tol: Tolerance, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let same_dtype = matches!(
        (got.dtype(), want.dtype()),
        (DType::F32, CDType::F32)
            | (DType::BF16, CDType::BF16)
            | (DType::U32, CDType::U32)
            | (DType::I64, CDType::I64)
    );
    assert!(
        same_dtype,
        "{what}: {} vs candle {:?}",
        got.dtype(),
        want.dtype()
    );
    tol.assert_close(&got.to_f64_vec().unwrap(), &candle_values(want), what);
}

/// `t` widened to f32 (exact from bf16).
fn up(t: &CTensor) -> CTensor {
    t.to_dtype(CDType::F32).unwrap()
}

/// candle's f32 kernel `f` on `t`'s values, rounded back to `t`'s dtype: what a bf16
/// kernel computing in f32 returns. Identity routing for f32.
fn in_f32(t: &CTensor, f: impl FnOnce(&CTensor) -> candle_core::Result<CTensor>) -> CTensor {
    f(&up(t)).and_then(|y| y.to_dtype(t.dtype())).unwrap()
}

/// A random Tally tensor and its candle twin.
fn pair(rng: &mut Rng, dims: &[usize], dtype: DType, lo: f64, hi: f64) -> (Tensor, CTensor) {
    let (t, _) = input(rng, dims, dtype, lo, hi);
    let c = to_candle(&t);
    (t, c)
}

#[test]
fn matmul_matches_candle() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        let (m, k, n) = (1 + rng.below(9), 1 + rng.below(17), 1 + rng.below(9));
        for dtype in FLOATS {
            let tol = Tolerance::of(dtype).summing(k);
            let what = |case: &str| format!("matmul {case} m={m} k={k} n={n} {dtype} seed {seed}");

            // (m, k) · (k, n)
            let (a, ca) = pair(&mut rng, &[m, k], dtype, -1.0, 1.0);
            let (b, cb) = pair(&mut rng, &[k, n], dtype, -1.0, 1.0);
            let y = a.matmul(&b).unwrap();
            check(&y, &ca.matmul(&cb).unwrap(), tol, &what("plain"));

            // (m, k) · (n, k)ᵀ, the rhs a transposed view on both sides.
            let (bt, cbt) = pair(&mut rng, &[n, k], dtype, -1.0, 1.0);
            let y = a.matmul(&bt.t().unwrap()).unwrap();
            let want = ca.matmul(&cbt.t().unwrap()).unwrap();
            check(&y, &want, tol, &what("rhs transposed"));

            // (2, 3, m, k) · (3, k, n) → (2, 3, m, n), the rhs broadcast over the batch.
            let (a, ca) = pair(&mut rng, &[2, 3, m, k], dtype, -1.0, 1.0);
            let (b, cb) = pair(&mut rng, &[3, k, n], dtype, -1.0, 1.0);
            let y = a.matmul(&b).unwrap();
            let want = ca.broadcast_matmul(&cb).unwrap();
            check(&y, &want, tol, &what("batched broadcast"));

            // (2, 1, m, k) · (3, n, k)ᵀ view → (2, 3, m, n): both batch dims broadcast.
            let (a, ca) = pair(&mut rng, &[2, 1, m, k], dtype, -1.0, 1.0);
            let (bt, cbt) = pair(&mut rng, &[3, n, k], dtype, -1.0, 1.0);
            let y = a.matmul(&bt.t().unwrap()).unwrap();
            let want = ca.broadcast_matmul(&cbt.t().unwrap()).unwrap();
            check(&y, &want, tol, &what("broadcast both, rhs transposed"));
        }
    }
}

#[test]
fn linear_matches_candle_nn_linear() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        let (rows, k, n) = (1 + rng.below(8), 1 + rng.below(24), 1 + rng.below(12));
        for dtype in FLOATS {
            let (w, cw) = pair(&mut rng, &[n, k], dtype, -1.0, 1.0);
            let (b, cb) = pair(&mut rng, &[n], dtype, -1.0, 1.0);
            let tally = Linear::new(w, Some(b)).unwrap();
            let candle = candle_nn::Linear::new(cw, Some(cb));
            // k products and the bias: k + 1 terms bounded by 1.
            let tol = Tolerance::of(dtype).summing(k + 1);
            for dims in [vec![rows, k], vec![2, rows, k]] {
                let (x, cx) = pair(&mut rng, &dims, dtype, -1.0, 1.0);
                let y = tally.forward(&x).unwrap();
                let what = format!("linear {dims:?} → {n} {dtype} seed {seed}");
                check(&y, &candle.forward(&cx).unwrap(), tol, &what);
            }
        }
    }
}

/// (…, n) with up to two leading dims.
fn rows_dims(rng: &mut Rng, max_n: usize) -> Vec<usize> {
    let mut dims: Vec<usize> = (0..1 + rng.below(2)).map(|_| 1 + rng.below(4)).collect();
    dims.push(1 + rng.below(max_n));
    dims
}

#[test]
fn softmax_matches_candle() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        for dtype in FLOATS {
            let dims = rows_dims(&mut rng, 32);
            let (x, cx) = pair(&mut rng, &dims, dtype, -4.0, 4.0);
            let y = x.softmax_last().unwrap();
            let what = format!("softmax {dims:?} {dtype} seed {seed}");
            let want = in_f32(&cx, candle_nn::ops::softmax_last_dim);
            check(&y, &want, Tolerance::of(dtype), &what);
            // candle's own kernel in the element type: in bf16 it rounds each exp, each of
            // the n − 1 partial sums and each quotient, so its relative error grows to
            // about (n + 1)·2⁻⁹ on top of the one rounding the tolerance allows.
            let n = *dims.last().unwrap();
            let native = match dtype {
                DType::BF16 => Tolerance {
                    rel: Tolerance::BF16.rel + (n + 1) as f64 / 512.0,
                    ..Tolerance::BF16
                },
                _ => Tolerance::of(dtype),
            };
            let want = candle_nn::ops::softmax_last_dim(&cx).unwrap();
            check(&y, &want, native, &format!("{what} (candle in {dtype})"));
        }
    }
}

#[test]
fn layer_norm_matches_candle() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        for dtype in FLOATS {
            let dims = rows_dims(&mut rng, 32);
            let n = *dims.last().unwrap();
            let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
            let (w, wv) = input(&mut rng, &[n], dtype, 0.5, 1.5);
            let (b, cb) = pair(&mut rng, &[n], dtype, -1.0, 1.0);
            let y = x.layer_norm(Some(&w), Some(&b), EPS).unwrap();
            let want = candle_nn::ops::layer_norm(&to_candle(&x), &to_candle(&w), &cb, EPS as f32)
                .unwrap();
            // As in softmax_norm.rs, per row: sums of n terms, and centring loses about
            // rel·max|x|/σ (candle's E[x²] − mean² loses the same bits, squared).
            let w_max = wv.iter().fold(0f64, |m, v| m.max(v.abs()));
            let got = y.to_f64_vec().unwrap();
            let want_v = candle_values(&want);
            for (r, ((g, c), row)) in got
                .chunks(n)
                .zip(want_v.chunks(n))
                .zip(xv.chunks(n))
                .enumerate()
            {
                let mean = row.iter().sum::<f64>() / n as f64;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
                let x_max = row.iter().fold(0f64, |m, v| m.max(v.abs()));
                let condition = x_max * x_max / (var + EPS) * w_max;
                let what = format!("layer_norm {dims:?} {dtype} seed {seed} row {r}");
                Tolerance::of(dtype)
                    .summing(n)
                    .conditioned(condition)
                    .assert_close(g, c, &what);
            }
            assert_eq!(y.dims(), want.dims());
        }
    }
}

#[test]
fn rms_norm_matches_candle() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        for dtype in FLOATS {
            let dims = rows_dims(&mut rng, 32);
            let n = *dims.last().unwrap();
            let (x, cx) = pair(&mut rng, &dims, dtype, -2.0, 2.0);
            let (w, cw) = pair(&mut rng, &[n], dtype, 0.5, 1.5);
            let y = x.rms_norm(Some(&w), EPS).unwrap();
            let want = candle_nn::ops::rms_norm(&cx, &cw, EPS as f32).unwrap();
            let tol = Tolerance::of(dtype).summing(n);
            check(
                &y,
                &want,
                tol,
                &format!("rms_norm {dims:?} {dtype} seed {seed}"),
            );
            // The residual form: candle's add, then its rms_norm of the sum.
            let (r, cr) = pair(&mut rng, &dims, dtype, -2.0, 2.0);
            let (sum, y) = x.add_rms_norm(&r, Some(&w), EPS).unwrap();
            let csum = (&cx + &cr).unwrap();
            let what = format!("add_rms_norm {dims:?} {dtype} seed {seed}");
            check(&sum, &csum, Tolerance::of(dtype), &what);
            let want = candle_nn::ops::rms_norm(&csum, &cw, EPS as f32).unwrap();
            check(&y, &want, tol, &what);
        }
    }
}

/// candle's counterpart of each Tally unary op (sigmoid is candle_nn's).
fn candle_unary(op: UnaryOp, x: &CTensor) -> CTensor {
    match op {
        UnaryOp::Neg => x.neg(),
        UnaryOp::Relu => x.relu(),
        UnaryOp::Relu6 => x.clamp(0f32, 6f32),
        UnaryOp::GeluErf => x.gelu_erf(),
        UnaryOp::GeluTanh => x.gelu(),
        UnaryOp::Silu => x.silu(),
        UnaryOp::Sigmoid => candle_nn::ops::sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.log(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Recip => x.recip(),
    }
    .unwrap()
}

#[test]
fn unary_ops_match_candle() {
    use UnaryOp::*;
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        let dims = [1 + rng.below(4), 8 + rng.below(25)];
        for op in [
            Neg, Relu, Relu6, GeluErf, GeluTanh, Silu, Sigmoid, Tanh, Exp, Log, Sqrt, Recip,
        ] {
            for dtype in FLOATS {
                let (lo, hi) = match op {
                    Log | Sqrt => (0.05, 4.0),
                    _ => (-4.0, 4.0),
                };
                let n = dims.iter().product();
                let mut v = rng.values(n, lo, hi);
                if op == Recip {
                    // Away from the pole: |x| in [0.25, 4).
                    v.iter_mut()
                        .for_each(|x| *x = x.signum() * (0.25 + x.abs() * 0.9375));
                }
                let x = make(&v, &dims, dtype);
                let y = x.unary(op).unwrap();
                let cx = to_candle(&x);
                let want = match op {
                    // candle's bf16 tanh-GELU runs in bf16 arithmetic (see the file head).
                    GeluTanh => in_f32(&cx, |x| Ok(candle_unary(op, x))),
                    _ => candle_unary(op, &cx),
                };
                let what = format!("{} {dims:?} {dtype} seed {seed}", op.name());
                check(&y, &want, Tolerance::of(dtype), &what);
            }
        }
    }
}

#[test]
fn broadcast_binary_ops_match_candle() {
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[2, 3, 4], &[2, 3, 4]),
        (&[2, 3, 4], &[4]),
        (&[2, 3, 4], &[3, 1]),
        (&[3, 1], &[1, 4]),
        (&[2, 1, 4], &[2, 3, 1]),
    ];
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        for (ld, rd) in shapes {
            for dtype in FLOATS {
                let (a, ca) = pair(&mut rng, ld, dtype, -2.0, 2.0);
                let (b, cb) = pair(&mut rng, rd, dtype, -2.0, 2.0);
                // A divisor with |b| in [0.5, 2.5).
                let dv: Vec<f64> = b.to_f64_vec().unwrap();
                let d = make(
                    &dv.iter()
                        .map(|v| v.signum() * (0.5 + v.abs()))
                        .collect::<Vec<_>>(),
                    rd,
                    dtype,
                );
                let cd = to_candle(&d);
                let tol = Tolerance::of(dtype);
                let what = |op: &str| format!("{op} {ld:?} by {rd:?} {dtype} seed {seed}");
                let want = ca.broadcast_add(&cb).unwrap();
                check(&a.add(&b).unwrap(), &want, tol, &what("add"));
                let want = ca.broadcast_mul(&cb).unwrap();
                check(&a.mul(&b).unwrap(), &want, tol, &what("mul"));
                let want = ca.broadcast_div(&cd).unwrap();
                check(&a.div(&d).unwrap(), &want, tol, &what("div"));
                let want = ca.silu().unwrap().broadcast_mul(&cb).unwrap();
                check(&a.silu_mul(&b).unwrap(), &want, tol, &what("silu_mul"));
            }
        }
    }
}

#[test]
fn reductions_match_candle() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        let dims = [1 + rng.below(4), 1 + rng.below(6), 1 + rng.below(8)];
        for dtype in FLOATS {
            let (x, cx) = pair(&mut rng, &dims, dtype, -2.0, 2.0);
            for dim in 0..3 {
                let what = |op: &str| format!("{op} over {dim} of {dims:?} {dtype} seed {seed}");
                // A sum of n terms bounded by 2.
                let tol = Tolerance::of(dtype).summing(2 * dims[dim]);
                // candle's bf16 sum accumulates in bf16 (see the file head).
                let want = in_f32(&cx, |x| x.sum_keepdim(dim));
                check(&x.sum(dim, true).unwrap(), &want, tol, &what("sum keepdim"));
                let want = in_f32(&cx, |x| x.sum(dim));
                check(&x.sum(dim, false).unwrap(), &want, tol, &what("sum"));
                // max and argmax select, they compute nothing: exact.
                let exact = Tolerance { rel: 0.0, abs: 0.0 };
                let want = cx.max_keepdim(dim).unwrap();
                check(
                    &x.max(dim, true).unwrap(),
                    &want,
                    exact,
                    &what("max keepdim"),
                );
                check(
                    &x.max(dim, false).unwrap(),
                    &cx.max(dim).unwrap(),
                    exact,
                    &what("max"),
                );
                let want = cx.argmax_keepdim(dim).unwrap();
                check(
                    &x.argmax(dim, true).unwrap(),
                    &want,
                    exact,
                    &what("argmax keepdim"),
                );
                let want = cx.argmax(dim).unwrap();
                check(
                    &x.argmax(dim, false).unwrap(),
                    &want,
                    exact,
                    &what("argmax"),
                );
            }
        }
    }
}

#[test]
fn embedding_matches_candle() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        let (vocab, dim) = (1 + rng.below(12), 1 + rng.below(8));
        let ids: Vec<f64> = (0..6).map(|_| rng.below(vocab) as f64).collect();
        for dtype in FLOATS {
            let (table, ctable) = pair(&mut rng, &[vocab, dim], dtype, -1.0, 1.0);
            let tally = Embedding::new(table).unwrap();
            let candle = candle_nn::Embedding::new(ctable.clone(), dim);
            for id_dtype in [DType::U32, DType::I64] {
                let id_t = make(&ids, &[2, 3], id_dtype);
                let what = format!("embedding {id_dtype} ids into ({vocab}, {dim}) {dtype}");
                let exact = Tolerance { rel: 0.0, abs: 0.0 };
                let y = tally.forward(&id_t).unwrap();
                check(
                    &y,
                    &candle.forward(&to_candle(&id_t)).unwrap(),
                    exact,
                    &what,
                );
                let flat = to_candle(&id_t).flatten_all().unwrap();
                let want = ctable.index_select(&flat, 0).unwrap();
                let y = y.reshape([6, dim]).unwrap();
                check(&y, &want, exact, &format!("{what} (index_select)"));
            }
        }
    }
}

#[test]
fn conv2d_matches_candle() {
    // (c_in, c_out, kernel, stride, padding, groups)
    let cases = [
        (3, 4, 3, 1, 0, 1),
        (3, 4, 3, 2, 1, 1),
        (4, 6, 3, 1, 1, 2),
        (4, 4, 3, 2, 2, 4), // depthwise
        (2, 3, 1, 1, 0, 1), // 1×1
    ];
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        for (c_in, c_out, k, stride, padding, groups) in cases {
            let (h, w) = (k + rng.below(6), k + rng.below(6));
            for dtype in FLOATS {
                let (x, cx) = pair(&mut rng, &[2, c_in, h, w], dtype, -1.0, 1.0);
                let (wt, cw) = pair(&mut rng, &[c_out, c_in / groups, k, k], dtype, -1.0, 1.0);
                let (b, cb) = pair(&mut rng, &[c_out], dtype, -1.0, 1.0);
                let p = Conv2dParams {
                    stride,
                    padding,
                    groups,
                    activation: tally_core::backend::ConvActivation::None,
                };
                // candle's CPU conv2d has no bf16 kernel: its f32 one on the bf16 values.
                let want = in_f32(&cx, |x| x.conv2d(&up(&cw), padding, stride, 1, groups));
                let terms = c_in / groups * k * k;
                let what = format!(
                    "conv2d x (2, {c_in}, {h}, {w}) k{k} s{stride} p{padding} g{groups} {dtype} seed {seed}"
                );
                let tol = Tolerance::of(dtype).summing(terms);
                check(&x.conv2d(&wt, None, p).unwrap(), &want, tol, &what);
                let want = want
                    .broadcast_add(&cb.reshape((1, c_out, 1, 1)).unwrap())
                    .unwrap();
                let tol = Tolerance::of(dtype).summing(terms + 1);
                let y = x.conv2d(&wt, Some(&b), p).unwrap();
                check(&y, &want, tol, &format!("{what} with bias"));
            }
        }
    }
}

#[test]
fn pooling_matches_candle() {
    // (kernel, stride)
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        for (kernel, stride) in [(2, 2), (3, 1), (2, 1), (3, 2)] {
            let (h, w) = (kernel + rng.below(6), kernel + rng.below(6));
            for dtype in FLOATS {
                let (x, cx) = pair(&mut rng, &[2, 3, h, w], dtype, -2.0, 2.0);
                let what = |op: &str| format!("{op} (2, 3, {h}, {w}) k{kernel} s{stride} {dtype}");
                let p = |kind| Pool2dParams {
                    kind,
                    kernel,
                    stride,
                };
                let exact = Tolerance { rel: 0.0, abs: 0.0 };
                let want = cx
                    .max_pool2d_with_stride((kernel, kernel), (stride, stride))
                    .unwrap();
                let y = x.pool2d(p(PoolKind::Max)).unwrap();
                check(&y, &want, exact, &what("max_pool2d"));
                // candle's bf16 average accumulates in bf16 (see the file head).
                let want = in_f32(&cx, |x| {
                    x.avg_pool2d_with_stride((kernel, kernel), (stride, stride))
                });
                let y = x.pool2d(p(PoolKind::Avg)).unwrap();
                // A mean of k² terms bounded by 2.
                let tol = Tolerance::of(dtype).summing(2 * kernel * kernel);
                check(&y, &want, tol, &what("avg_pool2d"));
            }
        }
    }
}

#[test]
fn rope_matches_candle() {
    for seed in SEEDS {
        let mut rng = Rng::new(seed);
        let (b, h, s, d) = (
            1 + rng.below(2),
            1 + rng.below(3),
            1 + rng.below(6),
            2 * (1 + rng.below(8)),
        );
        let half = d / 2;
        for dtype in FLOATS {
            let (x, cx) = pair(&mut rng, &[b, h, s, d], dtype, -2.0, 2.0);
            // candle and Tally both take cos/sin tables of shape (s, d/2).
            let angles = rng.values(s * half, -3.0, 3.0);
            let cos = make(
                &angles.iter().map(|a| a.cos()).collect::<Vec<_>>(),
                &[s, half],
                dtype,
            );
            let sin = make(
                &angles.iter().map(|a| a.sin()).collect::<Vec<_>>(),
                &[s, half],
                dtype,
            );
            let (ccos, csin) = (to_candle(&cos), to_candle(&sin));
            // Each output is a·c ± b·s: two products summed.
            let tol = Tolerance::of(dtype).summing(2);
            let what = |style| format!("rope {style:?} ({b}, {h}, {s}, {d}) {dtype} seed {seed}");
            // candle's bf16 RoPE runs in bf16 arithmetic (see the file head).
            let y = x.rope(&cos, &sin, RopeStyle::Half).unwrap();
            let want = in_f32(&cx, |x| {
                candle_nn::rotary_emb::rope(x, &up(&ccos), &up(&csin))
            });
            check(&y, &want, tol, &what(RopeStyle::Half));
            let y = x.rope(&cos, &sin, RopeStyle::Interleaved).unwrap();
            let want = in_f32(&cx, |x| {
                candle_nn::rotary_emb::rope_i(x, &up(&ccos), &up(&csin))
            });
            check(&y, &want, tol, &what(RopeStyle::Interleaved));
        }
    }
}

#[test]
fn digits_mlp_matches_candle() {
    let dir = tally_models::models_dir().join("digits");
    let weights = dir.join("mlp.safetensors");
    let held = Digits::load(&dir.join("digits.csv.gz")).unwrap().held_out();
    let x = held.tensor(tally_core::Device::Cpu).unwrap();
    let logits = DigitsMlp::load(&weights, DType::F32)
        .unwrap()
        .forward(&x)
        .unwrap();

    // The same checkpoint through candle: Linear layers with ReLU between.
    let tensors = candle_core::safetensors::load(&weights, &CDevice::Cpu).unwrap();
    let mut layers = Vec::new();
    while let Some(w) = tensors.get(&format!("layers.{}.weight", layers.len())) {
        let b = tensors[&format!("layers.{}.bias", layers.len())].clone();
        layers.push(candle_nn::Linear::new(w.clone(), Some(b)));
    }
    assert_eq!(layers.len(), 3, "digits MLP depth");
    let mut h = to_candle(&x);
    for (i, layer) in layers.iter().enumerate() {
        h = layer.forward(&h).unwrap();
        if i + 1 < layers.len() {
            h = h.relu().unwrap();
        }
    }

    // Three layers of f32 sums (64, 128 and 128 products, plus biases); activations
    // are not bounded by 1, so the floor covers the whole chain of terms.
    let tol = Tolerance::F32.summing(64 + 128 + 128 + 3);
    check(&logits, &h, tol, "digits MLP logits on the held-out split");
    let pred = logits.argmax(1, false).unwrap().to_vec::<u32>().unwrap();
    let cpred = h.argmax(1).unwrap().to_vec1::<u32>().unwrap();
    assert_eq!(pred, cpred, "digits MLP predictions");
    let acc = DigitsMlp::accuracy(&logits, &held.labels).unwrap();
    assert!(acc > 0.95, "held-out accuracy {acc}");
}
