//! 2-D convolution (stride, padding, groups, depthwise, bias) and max/avg pooling:
//! values against direct f64 loops, executed work against the analytic count.

use proptest::prelude::*;
use tally_core::backend::{Conv2dParams, ConvActivation, Pool2dParams, PoolKind};
use tally_core::{DType, OpId, Work};
use tally_tests::{counted, input, make, measure_one, Rng, Tolerance};

/// The geometry of one case, NCHW.
#[derive(Clone, Copy, Debug)]
struct Geo {
    n: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

impl Geo {
    fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
}

/// out[n, co, oy, ox] = bias[co] + Σ_{ci in co's group, ky, kx} x[n, ci, oy·s + ky − p, ox·s + kx − p]·w[co, ci − g0, ky, kx],
/// taps outside the image being zero.
fn conv_ref(x: &[f64], wt: &[f64], bias: Option<&[f64]>, g: &Geo) -> Vec<f64> {
    let (ho, wo) = (g.ho(), g.wo());
    let (c_per, co_per) = (g.c_in / g.groups, g.c_out / g.groups);
    let mut out = Vec::with_capacity(g.n * g.c_out * ho * wo);
    for n in 0..g.n {
        for co in 0..g.c_out {
            let c0 = (co / co_per) * c_per;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = bias.map_or(0.0, |b| b[co]);
                    for ci in 0..c_per {
                        for ky in 0..g.k {
                            for kx in 0..g.k {
                                let y = (oy * g.stride + ky) as isize - g.pad as isize;
                                let xx = (ox * g.stride + kx) as isize - g.pad as isize;
                                if y < 0 || xx < 0 || y as usize >= g.h || xx as usize >= g.w {
                                    continue;
                                }
                                let xi =
                                    ((n * g.c_in + c0 + ci) * g.h + y as usize) * g.w + xx as usize;
                                let wi = ((co * c_per + ci) * g.k + ky) * g.k + kx;
                                acc += x[xi] * wt[wi];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

fn pool_ref(
    x: &[f64],
    planes: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    avg: bool,
) -> Vec<f64> {
    let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
    let mut out = Vec::new();
    for p in 0..planes {
        for oy in 0..ho {
            for ox in 0..wo {
                let taps = (0..k).flat_map(|ky| {
                    (0..k).map(move |kx| x[(p * h + oy * s + ky) * w + ox * s + kx])
                });
                out.push(if avg {
                    taps.sum::<f64>() / (k * k) as f64
                } else {
                    taps.fold(f64::NEG_INFINITY, f64::max)
                });
            }
        }
    }
    out
}

fn check_conv(seed: u64, dtype: DType) {
    let mut rng = Rng::new(seed);
    let groups = 1 + rng.below(3);
    let c_per = 1 + rng.below(3);
    let depthwise = rng.coin();
    // Depthwise: one input channel per group and groups == c_in (a multiplier of 1 or 2).
    let (c_in, c_out) = if depthwise {
        (groups, groups * (1 + rng.below(2)))
    } else {
        (groups * c_per, groups * (1 + rng.below(3)))
    };
    let k = 1 + rng.below(3);
    let pad = rng.below(2);
    let g = Geo {
        n: 1 + rng.below(2),
        c_in,
        c_out,
        h: k.saturating_sub(2 * pad).max(1) + rng.below(5),
        w: k.saturating_sub(2 * pad).max(1) + rng.below(5),
        k,
        stride: 1 + rng.below(2),
        pad,
        groups,
    };
    let (x, xv) = input(&mut rng, &[g.n, g.c_in, g.h, g.w], dtype, -1.0, 1.0);
    let kdim = (g.c_in / g.groups) * g.k * g.k;
    let (wt, wv) = input(
        &mut rng,
        &[g.c_out, g.c_in / g.groups, g.k, g.k],
        dtype,
        -1.0,
        1.0,
    );
    let bias = rng
        .coin()
        .then(|| input(&mut rng, &[g.c_out], dtype, -1.0, 1.0));
    let activation = [
        ConvActivation::None,
        ConvActivation::Relu,
        ConvActivation::Relu6,
    ][rng.below(3)];
    let p = Conv2dParams {
        stride: g.stride,
        padding: g.pad,
        groups: g.groups,
        activation,
    };
    let (y, w) = counted(|| x.conv2d(&wt, bias.as_ref().map(|b| &b.0), p));
    let what = format!(
        "conv2d {g:?} bias={} {activation:?} {dtype}",
        bias.is_some()
    );
    assert_eq!(y.dims(), &[g.n, g.c_out, g.ho(), g.wo()], "{what}");
    let mut want = conv_ref(&xv, &wv, bias.as_ref().map(|b| &b.1[..]), &g);
    if let Some((lo, hi)) = activation.bounds() {
        want.iter_mut()
            .for_each(|v| *v = v.clamp(f64::from(lo), f64::from(hi)));
    }
    Tolerance::of(dtype)
        .summing(kdim + 1)
        .assert_close(&y.to_f64_vec().unwrap(), &want, &what);
    let outs = want.len() as u64;
    // Every output: (c_in/groups)·k·k FMAs over the zero-padded input, + 1 add for a bias,
    // + the fused clamp's comparisons (ReLU 1, ReLU6 2).
    assert_eq!(w.fma, outs * kdim as u64, "{what}");
    let adds = u64::from(bias.is_some()) + activation.comparisons();
    assert_eq!(w.add, outs * adds, "{what}");
    let size = dtype.size_in_bytes();
    let read = xv.len() + wv.len() + if bias.is_some() { g.c_out } else { 0 };
    assert_eq!(w.bytes_read, (read * size) as u64, "{what}");
    assert_eq!(w.bytes_written, want.len() as u64 * size as u64, "{what}");
}

proptest! {
    #![proptest_config(tally_tests::config())]

    #[test]
    fn conv2d_f32_matches_reference(seed in any::<u64>()) {
        check_conv(seed, DType::F32);
    }

    #[test]
    fn conv2d_bf16_matches_reference(seed in any::<u64>()) {
        check_conv(seed, DType::BF16);
    }

    #[test]
    fn pool2d_matches_reference(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let (n, c) = (1 + rng.below(2), 1 + rng.below(3));
        let k = 1 + rng.below(3);
        let (h, w) = (k + rng.below(5), k + rng.below(5));
        let stride = 1 + rng.below(3);
        let (x, xv) = input(&mut rng, &[n, c, h, w], DType::F32, -2.0, 2.0);
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let (y, wk) = counted(|| x.pool2d(Pool2dParams { kind, kernel: k, stride }));
            let avg = kind == PoolKind::Avg;
            let want = pool_ref(&xv, n * c, h, w, k, stride, avg);
            let (ho, wo) = ((h - k) / stride + 1, (w - k) / stride + 1);
            assert_eq!(y.dims(), &[n, c, ho, wo]);
            Tolerance::F32.summing(k * k).assert_close(&y.to_f64_vec().unwrap(), &want, &format!("{kind:?} pool {k}/{stride} on {h}x{w}"));
            let outs = want.len() as u64;
            // k·k comparisons (max) or adds (avg) per output, + one 1/(k·k) mul for avg.
            assert_eq!(wk.add, outs * (k * k) as u64);
            assert_eq!(wk.mul, if avg { outs } else { 0 });
            assert_eq!(wk.bytes_read, xv.len() as u64 * 4);
            assert_eq!(wk.bytes_written, outs * 4);
        }
    }
}

#[test]
fn conv2d_counts_pinned() {
    // x (1, 4, 5, 5), w (6, 2, 3, 3), groups 2, stride 2, padding 1, bias:
    // h_out = w_out = (5 + 2·1 − 3)/2 + 1 = 3, so 6·3·3 = 54 outputs of 2·3·3 = 18 taps.
    let x = make(&[1.0; 100], &[1, 4, 5, 5], DType::F32);
    let w = make(&[1.0; 108], &[6, 2, 3, 3], DType::F32);
    let b = make(&[0.5; 6], &[6], DType::F32);
    let p = Conv2dParams {
        stride: 2,
        padding: 1,
        groups: 2,
        activation: ConvActivation::None,
    };
    let (y, rec) = measure_one(|| x.conv2d(&w, Some(&b), p));
    assert_eq!(rec.op, OpId::Conv2d);
    assert_eq!(rec.work, rec.analytic);
    let wk = rec.work;
    assert_eq!(y.dims(), &[1, 6, 3, 3]);
    assert_eq!(wk.fma, 54 * 18); // padded taps are multiplied too, as PyTorch counts
    assert_eq!(wk.add, 54); // bias
    assert_eq!(wk.bytes_read, (100 + 108 + 6) * 4); // x + w + bias
    assert_eq!(wk.bytes_written, 54 * 4);
    // The corner output sees a 2x2 window of ones in each of its 2 channels: 8 + 0.5.
    assert_eq!(y.to_f64_vec().unwrap()[0], 8.5);

    // The same product with ReLU6 fused: every output (8.5 up to 18.5) clamps to 6, and
    // the record carries the clamp's 2 comparisons per output beside the bias add.
    let relu6 = Conv2dParams {
        activation: ConvActivation::Relu6,
        ..p
    };
    let (y6, rec) = measure_one(|| x.conv2d(&w, Some(&b), relu6));
    assert_eq!(rec.work, rec.analytic);
    assert_eq!(rec.work.add, 54 + 2 * 54); // bias + two comparisons per output
    assert_eq!(rec.work.fma, 54 * 18);
    assert_eq!(y6.to_f64_vec().unwrap(), vec![6.0; 54]);
    let neg = make(&[-1.0; 108], &[6, 2, 3, 3], DType::F32);
    let (y6, _) = counted(|| x.conv2d(&neg, Some(&b), relu6));
    assert_eq!(y6.to_f64_vec().unwrap(), vec![0.0; 54]); // all below zero

    // Depthwise: groups = c_in = c_out = 3, 3x3 kernel, no padding on 4x4: 2x2 outputs of 9 taps.
    let x = make(&[1.0; 48], &[1, 3, 4, 4], DType::F32);
    let w = make(&[1.0; 27], &[3, 1, 3, 3], DType::F32);
    let (y, wk) = counted(|| {
        x.conv2d(
            &w,
            None,
            Conv2dParams {
                stride: 1,
                padding: 0,
                groups: 3,
                activation: ConvActivation::None,
            },
        )
    });
    assert_eq!(y.to_f64_vec().unwrap(), vec![9.0; 12]);
    assert_eq!(
        wk,
        Work {
            fma: 12 * 9,
            bytes_read: (48 + 27) * 4,
            bytes_written: 12 * 4,
            ..Work::ZERO
        }
    );
}

#[test]
fn pool2d_counts_pinned() {
    // (1, 2, 4, 4) with a 2x2 window, stride 2: 2·2·2 = 8 outputs of 4 taps.
    let x = make(
        &(0..32).map(f64::from).collect::<Vec<_>>(),
        &[1, 2, 4, 4],
        DType::F32,
    );
    let (y, rec) = measure_one(|| {
        x.pool2d(Pool2dParams {
            kind: PoolKind::Max,
            kernel: 2,
            stride: 2,
        })
    });
    assert_eq!(rec.op, OpId::MaxPool2d);
    assert_eq!(rec.work, rec.analytic);
    assert_eq!(
        y.to_f64_vec().unwrap(),
        vec![5., 7., 13., 15., 21., 23., 29., 31.]
    );
    assert_eq!(
        rec.work,
        Work {
            add: 8 * 4,
            bytes_read: 32 * 4,
            bytes_written: 8 * 4,
            ..Work::ZERO
        }
    );
    let (y, rec) = measure_one(|| {
        x.pool2d(Pool2dParams {
            kind: PoolKind::Avg,
            kernel: 2,
            stride: 2,
        })
    });
    assert_eq!(rec.op, OpId::AvgPool2d);
    assert_eq!(rec.work, rec.analytic);
    assert_eq!(y.to_f64_vec().unwrap()[0], 2.5); // (0 + 1 + 4 + 5)/4
    assert_eq!(
        rec.work,
        Work {
            add: 8 * 4,
            mul: 8,
            bytes_read: 32 * 4,
            bytes_written: 8 * 4,
            ..Work::ZERO
        }
    );
}

#[test]
fn large_shapes_take_the_parallel_path() {
    let mut rng = Rng::new(99);
    let g = Geo {
        n: 2,
        c_in: 8,
        c_out: 12,
        h: 32,
        w: 32,
        k: 3,
        stride: 1,
        pad: 1,
        groups: 2,
    };
    let (x, xv) = input(&mut rng, &[g.n, g.c_in, g.h, g.w], DType::F32, -1.0, 1.0);
    let (wt, wv) = input(
        &mut rng,
        &[g.c_out, g.c_in / g.groups, g.k, g.k],
        DType::F32,
        -1.0,
        1.0,
    );
    let (b, bv) = input(&mut rng, &[g.c_out], DType::F32, -1.0, 1.0);
    let p = Conv2dParams {
        stride: g.stride,
        padding: g.pad,
        groups: g.groups,
        activation: ConvActivation::None,
    };
    let (y, w) = counted(|| x.conv2d(&wt, Some(&b), p));
    let want = conv_ref(&xv, &wv, Some(&bv), &g);
    Tolerance::F32
        .summing(4 * 9 + 1)
        .assert_close(&y.to_f64_vec().unwrap(), &want, "conv2d large");
    assert_eq!(w.fma, (2 * 12 * 32 * 32 * (4 * 9)) as u64); // outputs · (c_in/groups)·k·k
                                                            // Enough channels that each image's product (64 × 1024 × 144 FMAs) runs on the pool.
    let g = Geo {
        c_in: 16,
        c_out: 64,
        groups: 1,
        ..g
    };
    let (x, xv) = input(&mut rng, &[g.n, g.c_in, g.h, g.w], DType::F32, -1.0, 1.0);
    let (wt, wv) = input(
        &mut rng,
        &[g.c_out, g.c_in, g.k, g.k],
        DType::F32,
        -1.0,
        1.0,
    );
    let p = Conv2dParams {
        stride: 1,
        padding: 1,
        groups: 1,
        activation: ConvActivation::None,
    };
    let (y, w) = counted(|| x.conv2d(&wt, None, p));
    Tolerance::F32.summing(16 * 9).assert_close(
        &y.to_f64_vec().unwrap(),
        &conv_ref(&xv, &wv, None, &g),
        "conv2d wide",
    );
    assert_eq!(w.fma, (2 * 64 * 32 * 32 * (16 * 9)) as u64);
    let (x, xv) = input(&mut rng, &[2, 16, 64, 64], DType::F32, -2.0, 2.0);
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let (y, w) = counted(|| {
            x.pool2d(Pool2dParams {
                kind,
                kernel: 3,
                stride: 2,
            })
        });
        let want = pool_ref(&xv, 32, 64, 64, 3, 2, kind == PoolKind::Avg);
        Tolerance::F32.summing(9).assert_close(
            &y.to_f64_vec().unwrap(),
            &want,
            &format!("{kind:?} pool large"),
        );
        assert_eq!(w.add, 32 * 31 * 31 * 9); // planes · h_out · w_out · window
    }
}

#[test]
fn conv2d_of_broadcast_input_reads_distinct_elements_once() {
    // One image broadcast over a batch of 2: its 16 elements are read once.
    let img = make(&[1.0; 16], &[1, 1, 4, 4], DType::F32);
    let k = make(&[1.0; 4], &[1, 1, 2, 2], DType::F32);
    let p = Conv2dParams {
        stride: 1,
        padding: 0,
        groups: 1,
        activation: ConvActivation::None,
    };
    let (y, w) = counted(|| img.broadcast_as([2, 1, 4, 4])?.conv2d(&k, None, p));
    assert_eq!(y.to_f64_vec().unwrap(), vec![4.0; 2 * 9]);
    assert_eq!(
        w,
        Work {
            fma: 2 * 9 * 4,
            bytes_read: (16 + 4) * 4,
            bytes_written: 18 * 4,
            ..Work::ZERO
        }
    );
}

/// Convolutions write every output element themselves: run again after buffers of their
/// output's size (and im2col's) went back to the pool full of NaN, they give the same
/// values. Covers the im2col product, the pointwise product and the depthwise kernel.
#[test]
fn outputs_do_not_depend_on_what_reused_buffers_held() {
    let mut rng = Rng::new(7);
    // (c_in, c_out, k, stride, pad, groups, side): im2col with padding (27 rows of 50·50
    // columns, enough to split its rows over the pool), pointwise, depthwise.
    for (c_in, c_out, k, stride, pad, groups, side) in [
        (3, 8, 3, 2, 1, 1, 100),
        (8, 16, 1, 1, 0, 1, 20),
        (8, 8, 3, 1, 1, 8, 20),
    ] {
        let (h, w) = (side, side);
        let (x, _) = input(&mut rng, &[1, c_in, h, w], DType::F32, -1.0, 1.0);
        let (wt, _) = input(
            &mut rng,
            &[c_out, c_in / groups, k, k],
            DType::F32,
            -1.0,
            1.0,
        );
        let p = Conv2dParams {
            stride,
            padding: pad,
            groups,
            activation: ConvActivation::None,
        };
        let first = x.conv2d(&wt, None, p).unwrap();
        let want = first.to_f64_vec().unwrap();
        let out_len = want.len();
        let col_len = c_in / groups * k * k * first.dims()[2] * first.dims()[3];
        drop(first);
        // NaN tensors of both sizes, made by ops that take pooled buffers, then dropped.
        for n in [out_len, col_len] {
            let nan = tally_tensor::Tensor::from_vec(vec![f32::NAN; n], [n], x.device())
                .unwrap()
                .exp()
                .unwrap();
            drop(nan);
        }
        let again = x.conv2d(&wt, None, p).unwrap().to_f64_vec().unwrap();
        assert!(
            again.iter().zip(&want).all(|(a, b)| a == b),
            "conv (c_in {c_in}, k {k}, groups {groups}) changed after the pool held NaN buffers"
        );
    }
}
