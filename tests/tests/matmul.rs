//! Batched matmul and matmul_bias, with transposed views and broadcast batch dims:
//! values against a naive f64 triple loop, executed work against the analytic count.

use proptest::prelude::*;
use tally_core::{DType, Work};
use tally_tensor::Tensor;
use tally_tests::{counted, input, make, ravel, unravel, Rng, Tolerance};

/// (…a, m, k) · (…b, k, n) [+ bias (n)] in f64, batch dims broadcast NumPy-style.
/// Operands are row-major values of their logical shapes.
fn matmul_ref(
    a: &[f64],
    ad: &[usize],
    b: &[f64],
    bd: &[usize],
    bias: Option<&[f64]>,
) -> (Vec<f64>, Vec<usize>) {
    let (ra, rb) = (ad.len(), bd.len());
    let (m, k, n) = (ad[ra - 2], ad[ra - 1], bd[rb - 1]);
    let (ab, bb) = (&ad[..ra - 2], &bd[..rb - 2]);
    let rank = ab.len().max(bb.len());
    let dim = |d: &[usize], i: usize| {
        if i + d.len() >= rank {
            d[i + d.len() - rank]
        } else {
            1
        }
    };
    let batch: Vec<usize> = (0..rank).map(|i| dim(ab, i).max(dim(bb, i))).collect();
    // The batch entry of an operand for output batch index `idx` (size-1 dims stretch).
    let entry = |d: &[usize], idx: &[usize]| {
        let own: Vec<usize> = d
            .iter()
            .enumerate()
            .map(|(i, &s)| if s == 1 { 0 } else { idx[rank - d.len() + i] })
            .collect();
        ravel(&own, d)
    };
    let count: usize = batch.iter().product();
    let mut out = Vec::with_capacity(count * m * n);
    for bi in 0..count {
        let idx = unravel(bi, &batch);
        let (ea, eb) = (entry(ab, &idx) * m * k, entry(bb, &idx) * k * n);
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a[ea + i * k + p] * b[eb + p * n + j]).sum();
                out.push(dot + bias.map_or(0.0, |c| c[j]));
            }
        }
    }
    let mut dims = batch;
    dims.extend([m, n]);
    (out, dims)
}

/// An operand of logical shape `dims`, stored transposed (its last two dims swapped in
/// memory and viewed back with `.t()`) when `transposed`. Returns it and its row-major values.
fn operand(rng: &mut Rng, dims: &[usize], transposed: bool, dtype: DType) -> (Tensor, Vec<f64>) {
    if !transposed {
        return input(rng, dims, dtype, -1.0, 1.0);
    }
    let r = dims.len();
    let mut stored = dims.to_vec();
    stored.swap(r - 2, r - 1);
    let (t, v) = input(rng, &stored, dtype, -1.0, 1.0);
    let view = t.t().unwrap();
    let logical = (0..v.len())
        .map(|f| {
            let mut idx = unravel(f, dims);
            idx.swap(r - 2, r - 1);
            v[ravel(&idx, &stored)]
        })
        .collect();
    (view, logical)
}

/// One random case: batch dims for a and b that broadcast, m, n, k in 1..=9, either
/// operand transposed, optional bias.
fn check_matmul(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let (m, n, k) = (1 + rng.below(9), 1 + rng.below(9), 1 + rng.below(9));
    let batch: Vec<usize> = (0..rng.below(3)).map(|_| 1 + rng.below(3)).collect();
    let side = |rng: &mut Rng| -> Vec<usize> {
        let keep = rng.below(batch.len() + 1);
        batch[batch.len() - keep..]
            .iter()
            .map(|&d| if rng.coin() { d } else { 1 })
            .collect()
    };
    let (mut ad, mut bd) = (side(&mut rng), side(&mut rng));
    ad.extend([m, k]);
    bd.extend([k, n]);
    let (ta, tb) = (rng.coin(), rng.coin());
    let (a, av) = operand(&mut rng, &ad, ta, dtype);
    let (b, bv) = operand(&mut rng, &bd, tb, dtype);
    let bias = rng.coin().then(|| input(&mut rng, &[n], dtype, -1.0, 1.0));
    let (y, w) = counted(|| a.matmul_bias(&b, bias.as_ref().map(|(t, _)| t)));
    let (want, dims) = matmul_ref(&av, &ad, &bv, &bd, bias.as_ref().map(|(_, v)| &v[..]));
    let what = format!("{ad:?}·{bd:?} bias={} {dtype}", bias.is_some());
    assert_eq!(y.dims(), &dims[..], "{what}");
    Tolerance::of(dtype)
        .summing(k)
        .assert_close(&y.to_f64_vec().unwrap(), &want, &what);
    let outs = want.len() as u64;
    assert_eq!(w.fma, outs * k as u64, "{what}: b·m·n·k"); // k FMAs per output
    assert_eq!(
        w.add,
        if bias.is_some() { outs } else { 0 },
        "{what}: one bias add per output"
    );
    let size = dtype.size_in_bytes();
    let read = av.len() + bv.len() + bias.as_ref().map_or(0, |_| n);
    assert_eq!(
        w.bytes_read,
        (read * size) as u64,
        "{what}: each input element once"
    );
    assert_eq!(w.bytes_written, (want.len() * size) as u64);
}

proptest! {
    #![proptest_config(tally_tests::config())]

    #[test]
    fn matmul_f32_matches_reference(seed in any::<u64>()) {
        check_matmul(seed, DType::F32);
    }

    #[test]
    fn matmul_f16_bf16_match_reference(seed in any::<u64>()) {
        check_matmul(seed, DType::F16);
        check_matmul(seed, DType::BF16);
    }
}

#[test]
fn matmul_counts_pinned() {
    // a (2, 3, 5) · b (5, 4): b is shared across the batch and read once.
    let a = make(&[1.0; 30], &[2, 3, 5], DType::F32);
    let b = make(&[1.0; 20], &[5, 4], DType::F32);
    let (y, w) = counted(|| a.matmul(&b));
    assert_eq!(y.dims(), &[2, 3, 4]);
    assert_eq!(y.to_f64_vec().unwrap(), vec![5.0; 24]);
    assert_eq!(w.fma, 2 * 3 * 4 * 5); // b·m·n·k
    assert_eq!(w.fpo(), 2 * (2 * 3 * 4 * 5)); // 2·b·m·n·k
    assert_eq!(w.add, 0);
    assert_eq!(w.bytes_read, (30 + 20) * 4); // a + b, f32
    assert_eq!(w.bytes_written, 2 * 3 * 4 * 4); // b·m·n, f32

    let bias = make(&[0.5; 4], &[4], DType::F32);
    let (y, w) = counted(|| a.matmul_bias(&b, Some(&bias)));
    assert_eq!(y.to_f64_vec().unwrap(), vec![5.5; 24]);
    assert_eq!(w.fma, 2 * 3 * 4 * 5);
    assert_eq!(w.add, 2 * 3 * 4); // one bias add per output
    assert_eq!(w.bytes_read, (30 + 20 + 4) * 4); // a + b + bias

    // bf16 with a transposed rhs: (3, 6) · (4, 6).t() → (3, 4).
    let a = make(&[1.0; 18], &[3, 6], DType::BF16);
    let b = make(&[2.0; 24], &[4, 6], DType::BF16);
    let (y, w) = counted(|| a.matmul(&b.t()?));
    assert_eq!(y.to_f64_vec().unwrap(), vec![12.0; 12]);
    assert_eq!(
        w,
        Work {
            fma: 3 * 4 * 6,
            bytes_read: (18 + 24) * 2,
            bytes_written: 12 * 2,
            ..Work::ZERO
        }
    );
}

#[test]
fn matmul_spanning_several_packed_blocks() {
    // k > 256 (two KC slices), m > 96 rows (several row tasks), n not a multiple of any tile
    // width; the last two exceed 2M FMAs, so they run on the pool (row tasks, then column
    // groups for few rows).
    let mut rng = Rng::new(11);
    for (m, n, k) in [
        (13, 37, 300),
        (100, 9, 17),
        (1, 1, 513),
        (150, 130, 120),
        (8, 2100, 130),
    ] {
        let (a, av) = operand(&mut rng, &[m, k], false, DType::F32);
        let (b, bv) = operand(&mut rng, &[k, n], true, DType::F32);
        let (y, w) = counted(|| a.matmul(&b));
        let (want, _) = matmul_ref(&av, &[m, k], &bv, &[k, n], None);
        Tolerance::F32.summing(k).assert_close(
            &y.to_f64_vec().unwrap(),
            &want,
            &format!("{m}x{k}x{n}"),
        );
        assert_eq!(w.fma, (m * n * k) as u64);
    }
}

#[test]
fn matmul_of_narrowed_views() {
    // A view with an offset and a row stride wider than its width.
    let mut rng = Rng::new(3);
    let (full, fv) = input(&mut rng, &[6, 8], DType::F32, -1.0, 1.0);
    let a = full.narrow(0, 1, 4).unwrap().narrow(1, 2, 5).unwrap(); // rows 1..5, cols 2..7
    let av: Vec<f64> = (0..20).map(|f| fv[(1 + f / 5) * 8 + 2 + f % 5]).collect();
    let (b, bv) = input(&mut rng, &[5, 3], DType::F32, -1.0, 1.0);
    let (y, w) = counted(|| a.matmul(&b));
    let (want, _) = matmul_ref(&av, &[4, 5], &bv, &[5, 3], None);
    Tolerance::F32
        .summing(5)
        .assert_close(&y.to_f64_vec().unwrap(), &want, "narrowed a");
    assert_eq!(w.bytes_read, (20 + 15) * 4); // only the 20 elements the view covers
}

#[test]
fn matmul_of_permuted_batches_and_wide_outputs() {
    let mut rng = Rng::new(21);
    // a stored (m, batch, k) and permuted to (batch, m, k): the batch stride is not m·k.
    let (stored, sv) = input(&mut rng, &[4, 3, 6], DType::F32, -1.0, 1.0);
    let a = stored.permute(&[1, 0, 2]).unwrap();
    let av: Vec<f64> = (0..72)
        .map(|f| sv[((f / 6) % 4 * 3 + f / 24) * 6 + f % 6])
        .collect();
    let (b, bv) = input(&mut rng, &[3, 6, 5], DType::F32, -1.0, 1.0);
    let (y, w) = counted(|| a.matmul(&b));
    let (want, _) = matmul_ref(&av, &[3, 4, 6], &bv, &[3, 6, 5], None);
    Tolerance::F32
        .summing(6)
        .assert_close(&y.to_f64_vec().unwrap(), &want, "permuted batch");
    assert_eq!(w.fma, 3 * 4 * 5 * 6);
    // Few rows and many columns: the product splits over column groups.
    for (m, n, k) in [(1, 200, 40), (7, 130, 5), (2, 1000, 3)] {
        let (a, av) = input(&mut rng, &[m, k], DType::BF16, -1.0, 1.0);
        let (b, bv) = input(&mut rng, &[k, n], DType::BF16, -1.0, 1.0);
        let (bias, biasv) = input(&mut rng, &[n], DType::BF16, -1.0, 1.0);
        let (y, w) = counted(|| a.matmul_bias(&b, Some(&bias)));
        let (want, _) = matmul_ref(&av, &[m, k], &bv, &[k, n], Some(&biasv));
        Tolerance::BF16.summing(k).assert_close(
            &y.to_f64_vec().unwrap(),
            &want,
            &format!("{m}x{k}x{n} bf16"),
        );
        assert_eq!((w.fma, w.add), ((m * n * k) as u64, (m * n) as u64));
    }
}

/// The bf16 GEMM's own bound, tighter than `Tolerance::BF16.summing(k)`: bf16 inputs and
/// their products are exact in f32, so an output's error is the f32 accumulation
/// (≤ (k+1)·2⁻²⁴·Σ|terms|, bias included) plus one rounding to bf16 (≤ 2⁻⁹·|want|).
/// Checked as `2⁻⁸·|want| + 2⁻²²·(k+1)·Σ|terms|`.
#[allow(clippy::too_many_arguments)]
fn assert_bf16_gemm_close(
    got: &[f64],
    av: &[f64],
    bv: &[f64],
    bias: Option<&[f64]>,
    (batch, m, n, k): (usize, usize, usize, usize),
    b_shared: bool,
    what: &str,
) {
    for bi in 0..batch {
        let (ea, eb) = (bi * m * k, if b_shared { 0 } else { bi * k * n });
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|p| av[ea + i * k + p] * bv[eb + p * n + j]);
                let c = bias.map_or(0.0, |b| b[j]);
                let want = terms.clone().sum::<f64>() + c;
                let sum_abs = terms.map(f64::abs).sum::<f64>() + c.abs();
                let tol = want.abs() / 256.0 + (k + 1) as f64 * sum_abs / f64::from(1u32 << 22);
                let g = got[(bi * m + i) * n + j];
                assert!(
                    (g - want).abs() <= tol,
                    "{what}: ({bi}, {i}, {j}) is {g}, reference {want}, tolerance {tol:.3e}"
                );
            }
        }
    }
}

#[test]
fn bf16_gemm_matches_reference_on_packed_shapes() {
    // Rows > 4, so bf16 takes the packed path: `vdpbf16ps` on k-pairs where the host has
    // AVX-512 BF16, the f32 kernels otherwise. Odd k pads its last pair with zero; m and n
    // are not multiples of the 8×32 tile; k > 512 spans two packed slices.
    eprintln!(
        "bf16 GEMM path on this host: {}",
        tally_cpu::gemm::detect_bf16().name()
    );
    let mut rng = Rng::new(41);
    for (batch, m, n, k, ta, tb, with_bias, b_shared) in [
        (1, 5, 7, 1, false, false, false, false),
        (1, 9, 33, 3, false, false, true, false),
        (1, 8, 32, 64, true, false, false, false),
        (1, 17, 65, 513, false, true, true, false),
        (1, 64, 100, 257, true, true, true, false),
        (1, 130, 47, 1025, false, true, false, false),
        (3, 11, 40, 31, false, false, true, true), // b broadcast over the batch
        (2, 21, 19, 77, true, true, true, false),
    ] {
        let (mut ad, mut bd) = (vec![m, k], vec![k, n]);
        if batch > 1 {
            ad.insert(0, batch);
            if !b_shared {
                bd.insert(0, batch);
            }
        }
        let (a, av) = operand(&mut rng, &ad, ta, DType::BF16);
        let (b, bv) = operand(&mut rng, &bd, tb, DType::BF16);
        let bias = with_bias.then(|| input(&mut rng, &[n], DType::BF16, -1.0, 1.0));
        let (y, w) = counted(|| a.matmul_bias(&b, bias.as_ref().map(|(t, _)| t)));
        let what = format!("{ad:?}·{bd:?} ta={ta} tb={tb} bias={with_bias} bf16");
        assert_eq!(y.dtype(), DType::BF16, "{what}");
        assert_bf16_gemm_close(
            &y.to_f64_vec().unwrap(),
            &av,
            &bv,
            bias.as_ref().map(|(_, v)| &v[..]),
            (batch, m, n, k),
            b_shared,
            &what,
        );
        let outs = batch * m * n;
        assert_eq!(
            w.fma,
            (outs * k) as u64,
            "{what}: b·m·n·k, pad lanes not counted"
        );
        assert_eq!(w.add, if with_bias { outs as u64 } else { 0 }, "{what}");
        let read = av.len() + bv.len() + if with_bias { n } else { 0 };
        assert_eq!(
            w.bytes_read,
            (read * 2) as u64,
            "{what}: each input once, 2 bytes"
        );
        assert_eq!(
            w.bytes_written,
            (outs * 2) as u64,
            "{what}: each output once"
        );
    }
}

#[test]
fn bf16_gemm_counts_pinned() {
    // (7, 5) · (5, 40) + bias (40) in bf16: k = 5 is odd, so the kernel runs three k-pairs
    // with the last half zero, yet counts only the 5 real products per output.
    let a = make(&[1.0; 35], &[7, 5], DType::BF16);
    let b = make(&[0.5; 200], &[5, 40], DType::BF16);
    let bias = make(&[0.25; 40], &[40], DType::BF16);
    let (y, w) = counted(|| a.matmul_bias(&b, Some(&bias)));
    assert_eq!(y.to_f64_vec().unwrap(), vec![2.75; 280]); // 5 · 0.5 + 0.25
    assert_eq!(
        w,
        Work {
            fma: 7 * 40 * 5,                 // m·n·k
            add: 7 * 40,                     // one bias add per output
            bytes_read: (35 + 200 + 40) * 2, // a + b + bias, bf16
            bytes_written: 7 * 40 * 2,       // m·n, bf16
            ..Work::ZERO
        }
    );
    assert_eq!(w.fpo(), 2 * 7 * 40 * 5 + 7 * 40); // 2·m·n·k + m·n
}

/// A packed weight's product equals the product of the weight as a tensor, in every dtype
/// that packs (f16's panels are f32, bf16's stay bf16): within one rounding of the output
/// dtype, and the same work. Shapes cover a GEMV, a few rows, tile edges, two slices of k
/// and a product split by rows.
#[test]
fn a_packed_product_equals_the_product_of_the_tensor() {
    let mut rng = Rng::new(23);
    for dtype in [DType::F32, DType::BF16, DType::F16] {
        assert!(tally_tensor::packs(dtype), "{dtype}");
        let ulp = match dtype {
            DType::F32 => 1e-5, // two orders of f32 additions
            DType::BF16 => 1.0 / 128.0,
            _ => 1.0 / 1024.0,
        };
        for &(m, k, n) in &[(1, 40, 50), (3, 300, 70), (37, 600, 70), (230, 64, 200)] {
            let (x, _) = input(&mut rng, &[m, k], dtype, -1.0, 1.0);
            let (w, _) = input(&mut rng, &[k, n], dtype, -0.5, 0.5);
            let (bias, _) = input(&mut rng, &[n], dtype, -1.0, 1.0);
            let packed = w.pack_for_matmul().unwrap();
            let (p, wp) = counted(|| x.matmul_packed(&packed, Some(&bias)));
            let (t, wt) = counted(|| x.matmul_bias(&w, Some(&bias)));
            let what = format!("{m}×{k}×{n} {dtype}");
            assert_eq!(p.dtype(), dtype, "{what}");
            assert_eq!((wp.fma, wp.add), (wt.fma, wt.add), "{what}");
            for (i, (a, b)) in p
                .to_f64_vec()
                .unwrap()
                .iter()
                .zip(t.to_f64_vec().unwrap())
                .enumerate()
            {
                assert!(
                    (a - b).abs() <= ulp * b.abs().max(1.0),
                    "{what}: element {i}: packed {a}, tensor {b}"
                );
            }
        }
    }
}

/// A packed product with an activation equals the product then the activation as its own
/// op, bit for bit, and its one record counts what the two count together (the bytes stay
/// the product's: the activated outputs are written once). f32 products of more than a
/// few rows apply it in each task, over outputs still in cache; bf16 and products of a
/// few rows in one pass over the output after the product. Shapes cover a GEMV, tile
/// edges, two slices of k and a product split by rows.
#[test]
fn packed_matmul_with_an_activation_equals_the_two_ops() {
    use tally_core::UnaryOp;
    let mut rng = Rng::new(17);
    for dtype in [DType::F32, DType::BF16, DType::F16] {
        for &(m, k, n) in &[(3, 40, 50), (37, 300, 70), (230, 64, 200)] {
            let (x, _) = input(&mut rng, &[m, k], dtype, -1.0, 1.0);
            let (w, _) = input(&mut rng, &[k, n], dtype, -0.5, 0.5);
            let (bias, _) = input(&mut rng, &[n], dtype, -1.0, 1.0);
            let packed = w.pack_for_matmul().unwrap();
            for act in [UnaryOp::GeluErf, UnaryOp::Silu, UnaryOp::Relu] {
                let what = format!("{m}×{k}×{n} {dtype} {act:?}");
                let (fused, wf) = counted(|| x.matmul_packed_activated(&packed, Some(&bias), act));
                let (product, wp) = counted(|| x.matmul_packed(&packed, Some(&bias)));
                let (apart, wa) = counted(|| product.unary(act));
                assert_eq!(
                    fused.to_f64_vec().unwrap(),
                    apart.to_f64_vec().unwrap(),
                    "{what}"
                );
                let sum = wp + wa;
                assert_eq!(
                    (wf.add, wf.mul, wf.fma, wf.special),
                    (sum.add, sum.mul, sum.fma, sum.special),
                    "{what}"
                );
                assert_eq!(
                    (wf.bytes_read, wf.bytes_written),
                    (wp.bytes_read, wp.bytes_written),
                    "{what}"
                );
            }
        }
    }
}
