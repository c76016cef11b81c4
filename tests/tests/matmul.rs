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
