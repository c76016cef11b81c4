//! Softmax over the last dimension, layer norm (with and without weight and bias) and
//! RMS norm: values against f64 references, executed work against the analytic count.

use proptest::prelude::*;
use tally_core::{DType, Work};
use tally_tests::{counted, input, make, Rng, Tolerance};

const EPS: f64 = 1e-5;

fn softmax_ref(x: &[f64], n: usize) -> Vec<f64> {
    x.chunks(n)
        .flat_map(|row| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / sum)
        })
        .collect()
}

fn layer_norm_ref(x: &[f64], n: usize, w: Option<&[f64]>, b: Option<&[f64]>) -> Vec<f64> {
    x.chunks(n)
        .flat_map(|row| {
            let mean = row.iter().sum::<f64>() / n as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
            let rstd = 1.0 / (var + EPS).sqrt();
            row.iter()
                .enumerate()
                .map(|(j, v)| (v - mean) * rstd * w.map_or(1.0, |w| w[j]) + b.map_or(0.0, |b| b[j]))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `got` against the f64 layer norm of `x` (rows of n), row by row: sums of n terms (mean,
/// variance) widen the floor with the row length, and centring a row whose spread σ is
/// small next to max|x| loses bits (`conditioned`, by max|x|/σ times the largest weight).
fn assert_layer_norm_close(
    got: &[f64],
    x: &[f64],
    n: usize,
    w: Option<&[f64]>,
    b: Option<&[f64]>,
    dtype: DType,
    what: &str,
) {
    let want = layer_norm_ref(x, n, w, b);
    let w_max = w.map_or(1.0, |w| w.iter().fold(0f64, |m, v| m.max(v.abs())));
    for (r, (g, want)) in got.chunks(n).zip(want.chunks(n)).enumerate() {
        let row = &x[r * n..(r + 1) * n];
        let mean = row.iter().sum::<f64>() / n as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let x_max = row.iter().fold(0f64, |m, v| m.max(v.abs()));
        Tolerance::of(dtype)
            .summing(n)
            .conditioned(x_max / (var + EPS).sqrt() * w_max)
            .assert_close(g, want, &format!("{what} row {r}"));
    }
}

fn rms_norm_ref(x: &[f64], n: usize, w: Option<&[f64]>) -> Vec<f64> {
    x.chunks(n)
        .flat_map(|row| {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / n as f64;
            let rstd = 1.0 / (ms + EPS).sqrt();
            row.iter()
                .enumerate()
                .map(|(j, v)| v * rstd * w.map_or(1.0, |w| w[j]))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Rows × n, the rows spread over up to three leading dims.
fn rows_shape(rng: &mut Rng) -> (Vec<usize>, usize, usize) {
    let mut dims: Vec<usize> = (0..rng.below(3)).map(|_| 1 + rng.below(4)).collect();
    let n = 1 + rng.below(12);
    let rows = dims.iter().product();
    dims.push(n);
    (dims, rows, n)
}

fn check_softmax(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let (dims, rows, n) = rows_shape(&mut rng);
    let (x, xv) = input(&mut rng, &dims, dtype, -4.0, 4.0);
    let (y, w) = counted(|| x.softmax_last());
    Tolerance::of(dtype).assert_close(
        &y.to_f64_vec().unwrap(),
        &softmax_ref(&xv, n),
        &format!("softmax {dims:?} {dtype}"),
    );
    let (r, n64) = (rows as u64, n as u64);
    // Per row: max (n compares), shift (n), sum (n) adds; n exps + 1 reciprocal; n scale muls.
    let size = dtype.size_in_bytes() as u64;
    let want = Work {
        add: r * 3 * n64,
        mul: r * n64,
        special: r * (n64 + 1),
        bytes_read: r * n64 * size,
        bytes_written: r * n64 * size,
        ..Work::ZERO
    };
    assert_eq!(w, want, "softmax {dims:?} {dtype}");
}

fn check_layer_norm(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let (dims, rows, n) = rows_shape(&mut rng);
    let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
    let (wt, wv) = input(&mut rng, &[n], dtype, 0.5, 1.5);
    let (bt, bv) = input(&mut rng, &[n], dtype, -1.0, 1.0);
    for (has_w, has_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let (weight, bias) = (has_w.then_some(&wt), has_b.then_some(&bt));
        let (y, w) = counted(|| x.layer_norm(weight, bias, EPS));
        let what = format!("layer_norm {dims:?} w={has_w} b={has_b} {dtype}");
        let (wp, bp) = (has_w.then_some(&wv[..]), has_b.then_some(&bv[..]));
        assert_layer_norm_close(&y.to_f64_vec().unwrap(), &xv, n, wp, bp, dtype, &what);
        let (r, n64) = (rows as u64, n as u64);
        let extra = |on: bool| if on { n64 } else { 0 };
        // mean n adds + 1 mul; centre n adds; variance n FMAs + 1 mul; +eps 1 add; rsqrt;
        // normalise n muls; weight n muls; bias n adds.
        assert_eq!(w.add, r * (2 * n64 + 1 + extra(has_b)), "{what}");
        assert_eq!(w.mul, r * (2 + n64 + extra(has_w)), "{what}");
        assert_eq!(w.fma, r * n64, "{what}");
        assert_eq!(w.special, r, "{what}");
        let size = dtype.size_in_bytes() as u64;
        assert_eq!(
            w.bytes_read,
            (r * n64 + extra(has_w) + extra(has_b)) * size,
            "{what}"
        );
        assert_eq!(w.bytes_written, r * n64 * size, "{what}");
    }
}

fn check_rms_norm(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let (dims, rows, n) = rows_shape(&mut rng);
    let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
    let (wt, wv) = input(&mut rng, &[n], dtype, 0.5, 1.5);
    for has_w in [false, true] {
        let (y, w) = counted(|| x.rms_norm(has_w.then_some(&wt), EPS));
        let want = rms_norm_ref(&xv, n, has_w.then_some(&wv[..]));
        let what = format!("rms_norm {dims:?} w={has_w} {dtype}");
        Tolerance::of(dtype)
            .summing(n)
            .assert_close(&y.to_f64_vec().unwrap(), &want, &what);
        let (r, n64) = (rows as u64, n as u64);
        let wn = if has_w { n64 } else { 0 };
        // Σx² n FMAs; ×1/n 1 mul; +eps 1 add; rsqrt; scale n muls; weight n muls.
        let size = dtype.size_in_bytes() as u64;
        let want_w = Work {
            add: r,
            mul: r * (1 + n64 + wn),
            fma: r * n64,
            special: r,
            bytes_read: (r * n64 + wn) * size,
            bytes_written: r * n64 * size,
        };
        assert_eq!(w, want_w, "{what}");
    }
}

/// `add_rms_norm` against the f64 sum and its RMS norm, and against `add` then `rms_norm`
/// (the same values, bit for bit: the sum is rounded before it is normalised), with the
/// residual read through a transposed view when the shape allows one.
fn check_add_rms_norm(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let (dims, rows, n) = rows_shape(&mut rng);
    let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
    let (r, rv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
    let (wt, wv) = input(&mut rng, &[n], dtype, 0.5, 1.5);
    for has_w in [false, true] {
        let what = format!("add_rms_norm {dims:?} w={has_w} {dtype}");
        let ((sum, y), w) = counted(|| x.add_rms_norm(&r, has_w.then_some(&wt), EPS));
        let sum_want: Vec<f64> = xv.iter().zip(&rv).map(|(a, b)| a + b).collect();
        let tol = Tolerance::of(dtype);
        tol.assert_close(&sum.to_f64_vec().unwrap(), &sum_want, &what);
        let want = rms_norm_ref(&sum_want, n, has_w.then_some(&wv[..]));
        tol.summing(n)
            .assert_close(&y.to_f64_vec().unwrap(), &want, &what);
        let apart = x.add(&r).unwrap();
        let normed = apart.rms_norm(has_w.then_some(&wt), EPS).unwrap();
        assert_eq!(
            sum.to_f64_vec().unwrap(),
            apart.to_f64_vec().unwrap(),
            "{what}"
        );
        assert_eq!(
            y.to_f64_vec().unwrap(),
            normed.to_f64_vec().unwrap(),
            "{what}"
        );
        let (rr, n64) = (rows as u64, n as u64);
        let wn = if has_w { n64 } else { 0 };
        // The add's n per row, then rms_norm's counts over the sum; x, r (and w) read, the
        // sum and the normalised rows written.
        let size = dtype.size_in_bytes() as u64;
        let want_w = Work {
            add: rr * (n64 + 1),
            mul: rr * (1 + n64 + wn),
            fma: rr * n64,
            special: rr,
            bytes_read: (2 * rr * n64 + wn) * size,
            bytes_written: 2 * rr * n64 * size,
        };
        assert_eq!(w, want_w, "{what}");
    }
    if let [a, b] = dims[..] {
        // The residual as a transposed view of a (b, a) tensor.
        let (rt, rtv) = input(&mut rng, &[b, a], dtype, -2.0, 2.0);
        let view = rt.t().unwrap();
        let (sum, _) = x.add_rms_norm(&view, Some(&wt), EPS).unwrap();
        let want: Vec<f64> = (0..a * b)
            .map(|f| xv[f] + rtv[(f % b) * a + f / b])
            .collect();
        Tolerance::of(dtype).assert_close(&sum.to_f64_vec().unwrap(), &want, "transposed residual");
    }
}

/// `add_layer_norm` against the layer norm of the f64 sum, and against `add` then
/// `layer_norm` (the same values, bit for bit: the sum is rounded before it is
/// normalised), with and without weight and bias, the residual read through a transposed
/// view when the shape allows one; the work is the add's n adds per row and the norm's.
fn check_add_layer_norm(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let (dims, rows, n) = rows_shape(&mut rng);
    let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
    let (r, rv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
    let (wt, wv) = input(&mut rng, &[n], dtype, 0.5, 1.5);
    let (bt, bv) = input(&mut rng, &[n], dtype, -1.0, 1.0);
    let residuals = match dims[..] {
        [a, b] => {
            // The residual also as a transposed view of a (b, a) tensor.
            let (rt, rtv) = input(&mut rng, &[b, a], dtype, -2.0, 2.0);
            let view = rt.t().unwrap();
            let vals: Vec<f64> = (0..a * b).map(|f| rtv[(f % b) * a + f / b]).collect();
            vec![(r, rv, "contiguous"), (view, vals, "transposed")]
        }
        _ => vec![(r, rv, "contiguous")],
    };
    for (r, rv, how) in &residuals {
        for (has_w, has_b) in [(false, false), (true, false), (true, true)] {
            let what = format!("add_layer_norm {dims:?} {how} w={has_w} b={has_b} {dtype}");
            let (w_opt, b_opt) = (has_w.then_some(&wt), has_b.then_some(&bt));
            let (y, w) = counted(|| x.add_layer_norm(r, w_opt, b_opt, EPS));
            // The reference normalises the sum as the dtype holds it (the separate add's
            // output, itself checked against the f64 sum), as the op rounds it first.
            let sum = x.add(r).unwrap().to_f64_vec().unwrap();
            let exact: Vec<f64> = xv.iter().zip(rv).map(|(a, b)| a + b).collect();
            Tolerance::of(dtype).assert_close(&sum, &exact, &format!("{what} sum"));
            let (wp, bp) = (has_w.then_some(&wv[..]), has_b.then_some(&bv[..]));
            assert_layer_norm_close(&y.to_f64_vec().unwrap(), &sum, n, wp, bp, dtype, &what);
            let apart = x.add(r).unwrap().layer_norm(w_opt, b_opt, EPS).unwrap();
            assert_eq!(
                y.to_f64_vec().unwrap(),
                apart.to_f64_vec().unwrap(),
                "{what}"
            );
            let (rr, n64) = (rows as u64, n as u64);
            let (wn, bn) = (if has_w { n64 } else { 0 }, if has_b { n64 } else { 0 });
            // The add's n per row, then layer_norm's counts over the sum; x, r (and the
            // parameters) read, the normalised rows written.
            let size = dtype.size_in_bytes() as u64;
            let want_w = Work {
                add: rr * (3 * n64 + 1 + bn),
                mul: rr * (2 + n64 + wn),
                fma: rr * n64,
                special: rr,
                bytes_read: (2 * rr * n64 + wn + bn) * size,
                bytes_written: rr * n64 * size,
            };
            assert_eq!(w, want_w, "{what}");
        }
    }
}

proptest! {
    #![proptest_config(tally_tests::config())]

    #[test]
    fn add_layer_norm_matches_reference_and_the_two_ops(seed in any::<u64>()) {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            check_add_layer_norm(seed, dtype);
        }
    }

    #[test]
    fn softmax_matches_reference(seed in any::<u64>()) {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            check_softmax(seed, dtype);
        }
    }

    #[test]
    fn layer_norm_matches_reference(seed in any::<u64>()) {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            check_layer_norm(seed, dtype);
        }
    }

    #[test]
    fn rms_norm_matches_reference(seed in any::<u64>()) {
        for dtype in [DType::F32, DType::BF16] {
            check_rms_norm(seed, dtype);
        }
    }

    #[test]
    fn add_rms_norm_matches_reference_and_the_two_ops(seed in any::<u64>()) {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            check_add_rms_norm(seed, dtype);
        }
    }

    #[test]
    fn softmax_of_transposed_view(seed in any::<u64>(), m in 1usize..6, n in 1usize..6) {
        let mut rng = Rng::new(seed);
        let (x, xv) = input(&mut rng, &[m, n], DType::F32, -4.0, 4.0);
        let (y, _) = counted(|| x.t()?.softmax_last());
        let xt: Vec<f64> = (0..m * n).map(|f| xv[(f % m) * n + f / m]).collect();
        Tolerance::F32.assert_close(&y.to_f64_vec().unwrap(), &softmax_ref(&xt, m), "softmax of x.t()");
    }
}

#[test]
fn softmax_counts_pinned() {
    let x = make(&[0.0; 15], &[3, 5], DType::F32);
    let (y, w) = counted(|| x.softmax_last());
    assert_eq!(y.to_f64_vec().unwrap(), vec![0.2f32 as f64; 15]); // e⁰ · (1/5) in f32
    assert_eq!(w.add, 3 * (3 * 5)); // rows · (max + shift + sum) · n
    assert_eq!(w.mul, 3 * 5); // rows · n scalings by 1/sum
    assert_eq!(w.special, 3 * (5 + 1)); // rows · (n exps + 1 reciprocal)
    assert_eq!(w.bytes_read, 15 * 4);
    assert_eq!(w.bytes_written, 15 * 4);
}

#[test]
fn norm_counts_pinned() {
    // layer_norm of (2, 4) with weight and bias, f16.
    let x = make(
        &[1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 2.0],
        &[2, 4],
        DType::F16,
    );
    let g = make(&[1.0; 4], &[4], DType::F16);
    let b = make(&[0.0; 4], &[4], DType::F16);
    let (_, w) = counted(|| x.layer_norm(Some(&g), Some(&b), EPS));
    assert_eq!(w.add, 2 * (2 * 4 + 1 + 4)); // rows · (mean n + centre n + eps 1 + bias n)
    assert_eq!(w.mul, 2 * (2 + 4 + 4)); // rows · (1/n twice + normalise n + weight n)
    assert_eq!(w.fma, 2 * 4); // variance
    assert_eq!(w.special, 2); // one rsqrt per row
    assert_eq!(w.bytes_read, (8 + 4 + 4) * 2); // x + weight + bias, f16
    assert_eq!(w.bytes_written, 8 * 2);

    let (_, w) = counted(|| x.layer_norm(None, None, EPS));
    assert_eq!((w.add, w.mul, w.fma, w.special), (2 * 9, 2 * 6, 8, 2));
    assert_eq!(w.bytes_read, 8 * 2);

    let (_, w) = counted(|| x.rms_norm(Some(&g), EPS));
    assert_eq!(w.fma, 2 * 4); // Σx²
    assert_eq!(w.add, 2); // + eps
    assert_eq!(w.mul, 2 * (1 + 4 + 4)); // 1/n, scale, weight
    assert_eq!(w.special, 2);
    assert_eq!(w.bytes_read, (8 + 4) * 2);
}

#[test]
fn large_shapes_take_the_parallel_path() {
    let mut rng = Rng::new(99);
    let (rows, n) = (600, 257);
    let (x, xv) = input(&mut rng, &[6, 100, n], DType::F32, -4.0, 4.0);
    let (wt, wv) = input(&mut rng, &[n], DType::F32, 0.5, 1.5);
    let (bt, bv) = input(&mut rng, &[n], DType::F32, -1.0, 1.0);
    let (y, w) = counted(|| x.softmax_last());
    Tolerance::F32.assert_close(
        &y.to_f64_vec().unwrap(),
        &softmax_ref(&xv, n),
        "softmax large",
    );
    assert_eq!(w.special, rows * (n as u64 + 1));
    let (y, w) = counted(|| x.layer_norm(Some(&wt), Some(&bt), EPS));
    let want = layer_norm_ref(&xv, n, Some(&wv), Some(&bv));
    Tolerance::F32
        .summing(n)
        .assert_close(&y.to_f64_vec().unwrap(), &want, "layer_norm large");
    assert_eq!(w.fma, rows * n as u64);
    let (y, w) = counted(|| x.rms_norm(Some(&wt), EPS));
    Tolerance::F32.summing(n).assert_close(
        &y.to_f64_vec().unwrap(),
        &rms_norm_ref(&xv, n, Some(&wv)),
        "rms_norm large",
    );
    assert_eq!(w.special, rows);
}

#[test]
fn add_layer_norm_names_mismatched_shapes_and_dtypes() {
    let x = make(&[1.0; 6], &[2, 3], DType::F32);
    let r = make(&[1.0; 3], &[3], DType::F32);
    let msg = x
        .add_layer_norm(&r, None, None, EPS)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("add_layer_norm") && msg.contains("[2, 3]") && msg.contains("[3]"),
        "{msg}"
    );
    let h = make(&[1.0; 6], &[2, 3], DType::BF16);
    assert!(x.add_layer_norm(&h, None, None, EPS).is_err());
    let w = make(&[1.0; 2], &[2], DType::F32);
    let msg = x
        .add_layer_norm(&x, Some(&w), None, EPS)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("add_layer_norm") && msg.contains("[2]"),
        "{msg}"
    );
}

#[test]
fn add_rms_norm_names_mismatched_shapes() {
    let x = make(&[1.0; 6], &[2, 3], DType::F32);
    let r = make(&[1.0; 3], &[3], DType::F32);
    let e = x.add_rms_norm(&r, None, EPS).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("add_rms_norm") && msg.contains("[2, 3]") && msg.contains("[3]"),
        "{msg}"
    );
    let h = make(&[1.0; 6], &[2, 3], DType::BF16);
    assert!(x.add_rms_norm(&h, None, EPS).is_err());
}
