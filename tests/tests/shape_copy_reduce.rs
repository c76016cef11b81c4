//! Copies of strided views (transpose, narrow, permute, broadcast), concatenation,
//! dtype casts and reductions over every dim: values against references, work pinned.

use half::{bf16, f16};
use proptest::prelude::*;
use tally_core::{DType, OpId, ReduceOp, Work};
use tally_tensor::Tensor;
use tally_tests::{counted, input, make, measure_one, ravel, unravel, Rng, Tolerance};

/// A random rank-3 shape with dims 1..=4.
fn shape3(rng: &mut Rng) -> Vec<usize> {
    (0..3).map(|_| 1 + rng.below(4)).collect()
}

/// Row-major values of the view that puts input dim `perm[i]` at output dim `i`.
fn permute_ref(x: &[f64], dims: &[usize], perm: &[usize]) -> (Vec<f64>, Vec<usize>) {
    let out: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let vals = (0..x.len())
        .map(|f| {
            let oi = unravel(f, &out);
            let mut ii = vec![0; dims.len()];
            for (o, &p) in perm.iter().enumerate() {
                ii[p] = oi[o];
            }
            x[ravel(&ii, dims)]
        })
        .collect();
    (vals, out)
}

fn reduce_ref(x: &[f64], dims: &[usize], dim: usize, op: ReduceOp) -> Vec<f64> {
    let outer: usize = dims[..dim].iter().product();
    let n = dims[dim];
    let inner: usize = dims[dim + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let vals: Vec<f64> = (0..n).map(|j| x[(o * n + j) * inner + i]).collect();
            out.push(match op {
                ReduceOp::Sum => vals.iter().sum(),
                ReduceOp::Mean => vals.iter().sum::<f64>() / n as f64,
                ReduceOp::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                // The first index holding the maximum.
                ReduceOp::Argmax => {
                    let mut best = 0;
                    for (j, &v) in vals.iter().enumerate() {
                        if v > vals[best] {
                            best = j;
                        }
                    }
                    best as f64
                }
            });
        }
    }
    out
}

proptest! {
    #![proptest_config(tally_tests::config())]

    #[test]
    fn permuted_views_copy_to_reference(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let dims = shape3(&mut rng);
        let (x, xv) = input(&mut rng, &dims, DType::F32, -1.0, 1.0);
        for perm in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let (want, out) = permute_ref(&xv, &dims, &perm);
            let view = x.permute(&perm).unwrap();
            // copy() always runs the copy kernel, contiguous() only for strided views.
            let (y, w) = counted(|| view.copy());
            assert_eq!(y.dims(), &out[..]);
            assert!(y.is_contiguous());
            assert_eq!(y.to_f64_vec().unwrap(), want, "{perm:?}");
            assert_eq!(w, Work::ZERO.with_bytes(xv.len() as u64 * 4, xv.len() as u64 * 4));
            let (c, ledger) = tally_core::measure(|| view.contiguous());
            assert_eq!(c.unwrap().to_f64_vec().unwrap(), want);
            assert_eq!(ledger.records().len(), usize::from(!view.is_contiguous()), "{perm:?}");
        }
    }

    #[test]
    fn narrowed_views_copy_to_reference(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let dims = shape3(&mut rng);
        let (x, xv) = input(&mut rng, &dims, DType::BF16, -1.0, 1.0);
        let dim = rng.below(3);
        let start = rng.below(dims[dim]);
        let len = 1 + rng.below(dims[dim] - start);
        let (y, w) = counted(|| x.narrow(dim, start, len)?.copy());
        let mut out = dims.clone();
        out[dim] = len;
        let want: Vec<f64> = (0..out.iter().product())
            .map(|f| {
                let mut idx = unravel(f, &out);
                idx[dim] += start;
                xv[ravel(&idx, &dims)]
            })
            .collect();
        assert_eq!(y.to_f64_vec().unwrap(), want);
        let n = want.len() as u64;
        assert_eq!(w, Work::ZERO.with_bytes(n * 2, n * 2)); // only the narrowed part, bf16
    }

    #[test]
    fn cat_along_each_dim(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let dims = shape3(&mut rng);
        for dim in 0..3 {
            let parts: Vec<(Tensor, Vec<f64>, Vec<usize>)> = (0..1 + rng.below(3))
                .map(|_| {
                    let mut d = dims.clone();
                    d[dim] = 1 + rng.below(3);
                    // Every other part is a transposed view of (d0, d2, d1) data.
                    if rng.coin() {
                        let stored = [d[0], d[2], d[1]];
                        let (t, v) = input(&mut rng, &stored, DType::F32, -1.0, 1.0);
                        let (vals, _) = permute_ref(&v, &stored, &[0, 2, 1]);
                        (t.transpose(1, 2).unwrap(), vals, d)
                    } else {
                        let (t, v) = input(&mut rng, &d, DType::F32, -1.0, 1.0);
                        (t, v, d)
                    }
                })
                .collect();
            let refs: Vec<&Tensor> = parts.iter().map(|p| &p.0).collect();
            let (y, w) = counted(|| Tensor::cat(&refs, dim));
            let mut out = dims.clone();
            out[dim] = parts.iter().map(|p| p.2[dim]).sum();
            assert_eq!(y.dims(), &out[..]);
            let want: Vec<f64> = (0..out.iter().product())
                .map(|f| {
                    let mut idx = unravel(f, &out);
                    let mut p = 0;
                    while idx[dim] >= parts[p].2[dim] {
                        idx[dim] -= parts[p].2[dim];
                        p += 1;
                    }
                    parts[p].1[ravel(&idx, &parts[p].2)]
                })
                .collect();
            assert_eq!(y.to_f64_vec().unwrap(), want, "cat dim {dim}");
            let n = want.len() as u64;
            assert_eq!(w, Work::ZERO.with_bytes(n * 4, n * 4)); // every part read once, output written once
        }
    }

    #[test]
    fn reductions_over_each_dim(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let dims = shape3(&mut rng);
        for dtype in [DType::F32, DType::BF16] {
            let (x, xv) = input(&mut rng, &dims, dtype, -2.0, 2.0);
            for dim in 0..3 {
                for &op in ReduceOp::ALL {
                    for keepdim in [false, true] {
                        let (y, w) = counted(|| x.reduce(dim, op, keepdim));
                        let mut out = dims.clone();
                        if keepdim { out[dim] = 1 } else { out.remove(dim); }
                        let what = format!("{op} dim {dim} keepdim={keepdim} of {dims:?} {dtype}");
                        assert_eq!(y.dims(), &out[..], "{what}");
                        let want = reduce_ref(&xv, &dims, dim, op);
                        let got = y.to_f64_vec().unwrap();
                        if op == ReduceOp::Argmax {
                            assert_eq!(y.dtype(), DType::U32);
                            // The reference sees the same rounded values, so ties break alike.
                            assert_eq!(got, want, "{what}");
                        } else {
                            Tolerance::of(dtype).summing(dims[dim]).assert_close(&got, &want, &what);
                        }
                        let groups = (xv.len() / dims[dim]) as u64;
                        let size = dtype.size_in_bytes() as u64;
                        // n adds (or comparisons) per group, one mul per group for a mean.
                        assert_eq!(w.add, groups * dims[dim] as u64, "{what}");
                        assert_eq!(w.mul, if op == ReduceOp::Mean { groups } else { 0 }, "{what}");
                        assert_eq!(w.bytes_read, xv.len() as u64 * size, "{what}");
                        let out_size = if op == ReduceOp::Argmax { 4 } else { size }; // u32 indices
                        assert_eq!(w.bytes_written, groups * out_size, "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn casts_round_like_half(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let dims = shape3(&mut rng);
        let (x, xv) = input(&mut rng, &dims, DType::F32, -70000.0, 70000.0);
        let n = xv.len() as u64;
        let f32s: Vec<f32> = xv.iter().map(|&v| v as f32).collect();
        let (y, w) = counted(|| x.to_dtype(DType::F16));
        assert_eq!(y.to_vec::<f16>().unwrap(), f32s.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>());
        assert_eq!(w, Work::ZERO.with_bytes(n * 4, n * 2)); // read f32, write f16
        let (y, w) = counted(|| x.to_dtype(DType::BF16));
        assert_eq!(y.to_vec::<bf16>().unwrap(), f32s.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>());
        assert_eq!(w, Work::ZERO.with_bytes(n * 4, n * 2));
        let (y, w) = counted(|| x.to_dtype(DType::I64));
        assert_eq!(y.to_vec::<i64>().unwrap(), f32s.iter().map(|&v| v.trunc() as i64).collect::<Vec<_>>());
        assert_eq!(w, Work::ZERO.with_bytes(n * 4, n * 8));
        // Widening is exact, and a transposed view is read in logical order.
        let h = x.to_dtype(DType::BF16).unwrap();
        let (back, w) = counted(|| h.t()?.to_dtype(DType::F32));
        let hv = h.to_f64_vec().unwrap();
        let (want, _) = permute_ref(&hv, &dims, &[0, 2, 1]);
        assert_eq!(back.to_f64_vec().unwrap(), want);
        assert_eq!(w, Work::ZERO.with_bytes(n * 2, n * 4));
    }
}

#[test]
fn copy_counts_pinned() {
    // A (4, 3) transposed to (3, 4) and copied: 12 f32 read and written, no FPO.
    let x = make(
        &(0..12).map(f64::from).collect::<Vec<_>>(),
        &[4, 3],
        DType::F32,
    );
    let (y, rec) = measure_one(|| x.t()?.contiguous());
    assert_eq!(rec.op, OpId::Copy);
    assert_eq!(rec.work, rec.analytic);
    assert_eq!(
        rec.work,
        Work {
            bytes_read: 12 * 4,
            bytes_written: 12 * 4,
            ..Work::ZERO
        }
    );
    assert_eq!(
        y.to_f64_vec().unwrap(),
        vec![0., 3., 6., 9., 1., 4., 7., 10., 2., 5., 8., 11.]
    );

    // A broadcast view materialised: its 3 distinct elements are read once.
    let row = make(&[1.0, 2.0, 3.0], &[1, 3], DType::F32);
    let (y, w) = counted(|| row.broadcast_as([4, 3])?.contiguous());
    assert_eq!(y.to_f64_vec().unwrap(), [1.0, 2.0, 3.0].repeat(4));
    assert_eq!(
        w,
        Work {
            bytes_read: 3 * 4,
            bytes_written: 12 * 4,
            ..Work::ZERO
        }
    );

    // Reshaping a strided view copies (counted); reshaping a contiguous one does not.
    let (_, rec) = measure_one(|| x.t()?.reshape([12]));
    assert_eq!(rec.op, OpId::Copy);
    let (_, ledger) = tally_core::measure(|| x.reshape([2, 6]));
    assert!(ledger.records().is_empty());
}

#[test]
fn write_slice_writes_in_place_counting_the_source_alone() {
    let mut dst = Tensor::zeros([2, 4, 3], DType::F16, tally_core::Device::Cpu).unwrap();
    let src = make(
        &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.],
        &[2, 2, 3],
        DType::F16,
    );
    let (_, ledger) = tally_core::measure(|| dst.write_slice(1, 1, &src));
    let [rec] = ledger.records() else {
        panic!("one record: {:?}", ledger.records())
    };
    assert_eq!(rec.op, OpId::Concat);
    assert_eq!(rec.work, rec.analytic);
    assert_eq!(
        rec.work,
        Work {
            bytes_read: 12 * 2,
            bytes_written: 12 * 2,
            ..Work::ZERO
        }
    ); // f16: the source's 12 elements, not the destination's 24
    let row = |a: f64| [a, a + 1., a + 2.];
    let want: Vec<f64> = [
        [0.; 3],
        row(1.),
        row(4.),
        [0.; 3],
        [0.; 3],
        row(7.),
        row(10.),
        [0.; 3],
    ]
    .concat();
    assert_eq!(dst.to_f64_vec().unwrap(), want);

    // A view shares the storage: the destination is copied first, the view unchanged.
    let view = dst.narrow(1, 0, 2).unwrap();
    let before = view.to_f64_vec().unwrap();
    let one = make(&[9.; 6], &[2, 1, 3], DType::F16);
    let (_, ledger) = tally_core::measure(|| dst.write_slice(1, 0, &one));
    let ops: Vec<OpId> = ledger.records().iter().map(|r| r.op).collect();
    assert_eq!(ops, [OpId::Copy, OpId::Concat]);
    assert_eq!(view.to_f64_vec().unwrap(), before);
    assert_eq!(dst.to_f64_vec().unwrap()[..3], [9., 9., 9.]);

    // Errors name the op: past the end, another shape, a view as destination.
    let err = |r: tally_core::Result<()>| r.unwrap_err().to_string();
    assert!(err(dst.write_slice(1, 3, &src)).contains("write_slice"));
    assert!(err(dst.write_slice(0, 0, &src)).contains("write_slice"));
    let mut v = dst.narrow(1, 0, 2).unwrap();
    assert!(err(v.write_slice(1, 0, &one)).contains("whole contiguous"));
}

#[test]
fn cat_counts_pinned() {
    let a = make(&[1.0; 6], &[2, 3], DType::F16);
    let b = make(&[2.0; 4], &[2, 2], DType::F16);
    let (y, rec) = measure_one(|| Tensor::cat(&[&a, &b], 1));
    assert_eq!(rec.op, OpId::Concat);
    assert_eq!(rec.work, rec.analytic);
    assert_eq!(
        y.to_f64_vec().unwrap(),
        vec![1., 1., 1., 2., 2., 1., 1., 1., 2., 2.]
    );
    assert_eq!(
        rec.work,
        Work {
            bytes_read: (6 + 4) * 2,
            bytes_written: 10 * 2,
            ..Work::ZERO
        }
    ); // f16
}

#[test]
fn cast_counts_pinned() {
    let x = make(&[1.5, -2.5, 3.0, 70000.0], &[4], DType::F32);
    let (y, w) = counted(|| x.to_dtype(DType::F16));
    assert_eq!(
        w,
        Work {
            bytes_read: 4 * 4,
            bytes_written: 4 * 2,
            ..Work::ZERO
        }
    );
    assert_eq!(y.to_f64_vec().unwrap()[..3], [1.5, -2.5, 3.0]);
    assert!(y.to_f64_vec().unwrap()[3].is_infinite()); // past f16's range
    let (y, w) = counted(|| x.to_dtype(DType::U32));
    assert_eq!(y.to_vec::<u32>().unwrap(), vec![1, 0, 3, 70000]); // truncates; negatives saturate to 0
    assert_eq!(w.bytes_written, 4 * 4);
    let (_, ledger) = tally_core::measure(|| x.to_dtype(DType::F32));
    assert!(
        ledger.records().is_empty(),
        "a same-dtype cast runs no kernel"
    );
}

#[test]
fn reduce_counts_pinned() {
    // (2, 3, 4) over dim 1: 2·4 = 8 groups of 3.
    let x = make(
        &(0..24).map(f64::from).collect::<Vec<_>>(),
        &[2, 3, 4],
        DType::F32,
    );
    let (y, w) = counted(|| x.sum(1, false));
    assert_eq!(y.dims(), &[2, 4]);
    assert_eq!(
        y.to_f64_vec().unwrap(),
        vec![12., 15., 18., 21., 48., 51., 54., 57.]
    );
    assert_eq!(
        w,
        Work {
            add: 2 * 4 * 3,
            bytes_read: 24 * 4,
            bytes_written: 8 * 4,
            ..Work::ZERO
        }
    );
    let (_, w) = counted(|| x.mean(1, true));
    assert_eq!((w.add, w.mul), (2 * 4 * 3, 2 * 4)); // n adds + one 1/n mul per group
    let (y, w) = counted(|| x.max(2, false));
    assert_eq!(y.to_f64_vec().unwrap(), vec![3., 7., 11., 15., 19., 23.]);
    assert_eq!(w.add, 6 * 4); // 4 comparisons per group
    let (y, w) = counted(|| x.argmax(0, false));
    assert_eq!(y.to_vec::<u32>().unwrap(), vec![1; 12]);
    assert_eq!(
        w,
        Work {
            add: 12 * 2,
            bytes_read: 24 * 4,
            bytes_written: 12 * 4,
            ..Work::ZERO
        }
    ); // u32 out
}

#[test]
fn argmax_takes_the_first_maximum() {
    let x = make(&[1.0, 3.0, 3.0, 2.0, -1.0, -1.0], &[2, 3], DType::F32);
    assert_eq!(
        x.argmax(1, false).unwrap().to_vec::<u32>().unwrap(),
        vec![1, 0]
    ); // [1, 3, 3] and [2, -1, -1]
    let x = make(&[-5.0, -5.0, -7.0], &[3], DType::BF16);
    assert_eq!(x.argmax(0, true).unwrap().to_vec::<u32>().unwrap(), vec![0]);
}

#[test]
fn reduce_of_transposed_view() {
    let mut rng = Rng::new(5);
    let (x, xv) = input(&mut rng, &[3, 5], DType::F32, -1.0, 1.0);
    let (y, w) = counted(|| x.t()?.sum(1, false)); // (5, 3) summed over its last dim
    let want: Vec<f64> = (0..5)
        .map(|j| (0..3).map(|i| xv[i * 5 + j]).sum())
        .collect();
    Tolerance::F32
        .summing(3)
        .assert_close(&y.to_f64_vec().unwrap(), &want, "sum of x.t()");
    assert_eq!(w.add, 5 * 3);
}

#[test]
fn large_shapes_take_the_parallel_path() {
    let mut rng = Rng::new(99);
    let dims = [64, 128, 16];
    let (x, xv) = input(&mut rng, &dims, DType::F32, -2.0, 2.0);
    for dim in 0..3 {
        for &op in ReduceOp::ALL {
            let (y, w) = counted(|| x.reduce(dim, op, true));
            let want = reduce_ref(&xv, &dims, dim, op);
            Tolerance::F32.summing(dims[dim]).assert_close(
                &y.to_f64_vec().unwrap(),
                &want,
                &format!("{op} dim {dim} large"),
            );
            assert_eq!(w.add, (64 * 128 * 16) as u64); // every element enters one group once
        }
    }
    let (y, w) = counted(|| x.permute(&[2, 0, 1])?.contiguous());
    let (want, _) = permute_ref(&xv, &dims, &[2, 0, 1]);
    assert_eq!(y.to_f64_vec().unwrap(), want);
    assert_eq!(w.bytes_read, 64 * 128 * 16 * 4);
    let (y, _) = counted(|| Tensor::cat(&[&x, &x.narrow(1, 5, 7)?], 1));
    assert_eq!(y.dims(), &[64, 135, 16]);
    assert_eq!(
        y.to_f64_vec().unwrap()[128 * 16..135 * 16],
        xv[5 * 16..12 * 16]
    );
}
