//! The FPO formulas of `tally_core::cost`, checked against textbook algorithms run on a
//! counting scalar ([`Tick`]). Kernels are held to the formulas elsewhere; here the formulas
//! are held to what the algorithm they describe actually performs.

use tally_core::cost::{self, AttentionGeometry, Conv2dGeometry};
use tally_core::{BinaryOp, DType, ReduceOp, UnaryOp, Work};
use tally_tests::{ticks, Tick};

fn t(v: f64) -> Tick {
    Tick(v)
}

fn row(n: usize) -> Vec<Tick> {
    (0..n).map(|i| t(i as f64 * 0.37 - 1.0)).collect()
}

/// Sums from the identity: n adds for n terms.
fn sum(v: &[Tick]) -> Tick {
    v.iter().fold(t(0.0), |a, &x| a + x)
}

fn unary(op: UnaryOp, x: Tick) -> Tick {
    let erf = |v: f64| libm::erf(v);
    match op {
        UnaryOp::Neg => x * t(-1.0),
        UnaryOp::Relu => x.max(t(0.0)),
        UnaryOp::Relu6 => x.max(t(0.0)).min(t(6.0)),
        UnaryOp::GeluErf => {
            t(0.5) * x * (t(1.0) + (x * t(std::f64::consts::FRAC_1_SQRT_2)).special(erf))
        }
        UnaryOp::GeluTanh => {
            let inner = t(0.797_884_6) * x * (t(1.0) + t(0.044715) * x * x);
            t(0.5) * x * (t(1.0) + inner.special(f64::tanh))
        }
        UnaryOp::Silu => x * x.special(|v| 1.0 / (1.0 + (-v).exp())),
        UnaryOp::Sigmoid => x.special(|v| 1.0 / (1.0 + (-v).exp())),
        UnaryOp::Tanh => x.special(f64::tanh),
        UnaryOp::Exp => x.special(f64::exp),
        UnaryOp::Log => x.special(f64::ln),
        UnaryOp::Sqrt => x.special(f64::sqrt),
        UnaryOp::Recip => x.special(|v| 1.0 / v),
    }
}

fn softmax(x: &[Tick]) -> Vec<Tick> {
    let m = x.iter().fold(t(f64::NEG_INFINITY), |a, &v| a.max(v));
    let e: Vec<Tick> = x.iter().map(|&v| (v - m).special(f64::exp)).collect();
    let r = sum(&e).special(|s| 1.0 / s);
    e.iter().map(|&v| v * r).collect()
}

#[test]
fn elementwise_formulas_match_their_definitions() {
    for &op in UnaryOp::ALL {
        let w = ticks(|| {
            unary(op, t(0.3));
        });
        assert_eq!(w, cost::unary_per_elem(op), "{op}");
    }
    for &op in BinaryOp::ALL {
        let w = ticks(|| {
            let (a, b) = (t(1.5), t(0.5));
            let _ = match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => a / b,
                BinaryOp::Maximum => a.max(b),
                BinaryOp::Minimum => a.min(b),
                BinaryOp::SiluMul => unary(UnaryOp::Silu, a) * b,
            };
        });
        assert_eq!(w, cost::binary_per_elem(op), "{op}");
    }
    let w = ticks(|| {
        t(2.0).fma(t(3.0), t(1.0));
    });
    assert_eq!(w, cost::affine(1, 1, DType::F32).arithmetic());
}

#[test]
fn row_op_formulas_match_textbook_algorithms() {
    let n = 13;
    let x = row(n);
    let w = ticks(|| {
        softmax(&x);
    });
    assert_eq!(w, cost::softmax(1, n, DType::F32).arithmetic());

    for (weight, bias) in [(false, false), (true, false), (false, true), (true, true)] {
        let w = ticks(|| {
            let inv_n = t(1.0 / n as f64);
            let mean = sum(&x) * inv_n;
            let c: Vec<Tick> = x.iter().map(|&v| v - mean).collect();
            let var = c.iter().fold(t(0.0), |a, &v| v.fma(v, a)) * inv_n;
            let rstd = (var + t(1e-5)).special(|v| 1.0 / v.sqrt());
            for &ci in &c {
                let mut y = ci * rstd;
                if weight {
                    y = y * t(1.1);
                }
                if bias {
                    y = y + t(0.1);
                }
                let _ = y;
            }
        });
        assert_eq!(
            w,
            cost::layer_norm(1, n, weight, bias, DType::F32).arithmetic(),
            "weight {weight} bias {bias}"
        );
    }

    for weight in [false, true] {
        let w = ticks(|| {
            let ms = x.iter().fold(t(0.0), |a, &v| v.fma(v, a)) * t(1.0 / n as f64);
            let rstd = (ms + t(1e-6)).special(|v| 1.0 / v.sqrt());
            for &v in &x {
                let y = v * rstd;
                let _ = if weight { y * t(0.9) } else { y };
            }
        });
        assert_eq!(
            w,
            cost::rms_norm(1, n, weight, DType::F32).arithmetic(),
            "weight {weight}"
        );
    }

    let w = ticks(|| {
        for pair in x.chunks_exact(2) {
            let (a, b, c, s) = (pair[0], pair[1], t(0.8), t(0.6));
            let _ = (a * c - b * s, a * s + b * c);
        }
    });
    assert_eq!(w, cost::rope(2 * (n / 2), 0, DType::F32).arithmetic());

    for op in [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Argmax,
    ] {
        let w = ticks(|| {
            let _ = match op {
                ReduceOp::Sum => sum(&x),
                ReduceOp::Mean => sum(&x) * t(1.0 / n as f64),
                ReduceOp::Max | ReduceOp::Argmax => {
                    x.iter().fold(t(f64::NEG_INFINITY), |a, &v| a.max(v))
                }
            };
        });
        assert_eq!(w, cost::reduce(op, 1, n, DType::F32).arithmetic(), "{op}");
    }
}

#[test]
fn matmul_and_convolution_formulas_match_their_loops() {
    let (b, m, n, k) = (2, 3, 4, 5);
    let w = ticks(|| {
        for _ in 0..b * m * n {
            let dot = (0..k).fold(t(0.0), |acc, p| t(p as f64).fma(t(0.5), acc));
            let _ = dot + t(0.1); // bias
        }
    });
    assert_eq!(
        w,
        cost::matmul(b, m, n, k, 0, 0, true, DType::F32).arithmetic()
    );

    let g = Conv2dGeometry {
        batch: 2,
        c_in: 4,
        c_out: 6,
        h_in: 7,
        w_in: 5,
        kh: 3,
        kw: 3,
        stride: 2,
        padding: 1,
        groups: 2,
    };
    let w = ticks(|| {
        for _ in 0..g.out_elems() {
            // Every tap of the window, padding included (multiplied as zero).
            let acc =
                (0..(g.c_in / g.groups) * g.kh * g.kw).fold(t(0.0), |a, _| t(0.0).fma(t(1.0), a));
            let _ = acc + t(0.2);
        }
    });
    assert_eq!(w, cost::conv2d(&g, true, DType::F32).arithmetic());

    let p = Conv2dGeometry {
        padding: 0,
        groups: 4,
        c_out: 4,
        ..g
    };
    for avg in [false, true] {
        let w = ticks(|| {
            for _ in 0..p.out_elems() {
                let win = row(p.kh * p.kw);
                let _ = if avg {
                    sum(&win) * t(1.0 / 9.0)
                } else {
                    win.iter().fold(t(f64::NEG_INFINITY), |a, &v| a.max(v))
                };
            }
        });
        assert_eq!(
            w,
            cost::pool2d(&p, avg, DType::F32).arithmetic(),
            "avg {avg}"
        );
    }
}

#[test]
fn attention_formula_matches_a_causal_loop() {
    let g = AttentionGeometry {
        batch: 2,
        heads: 4,
        kv_heads: 2,
        q_len: 5,
        kv_len: 7,
        head_dim: 3,
    };
    let d = g.head_dim;
    for causal in [false, true] {
        let mut visible = 0u64;
        let w = ticks(|| {
            for _ in 0..g.batch * g.heads {
                for i in 0..g.q_len {
                    let end = if causal {
                        i + g.kv_len - g.q_len + 1
                    } else {
                        g.kv_len
                    };
                    visible += end as u64;
                    let scores: Vec<Tick> = (0..end)
                        .map(|_| (0..d).fold(t(0.0), |a, _| t(0.1).fma(t(0.2), a)) * t(0.5))
                        .collect();
                    let p = softmax(&scores);
                    for _ in 0..d {
                        let _ = p.iter().fold(t(0.0), |a, &pj| pj.fma(t(0.3), a));
                    }
                }
            }
        });
        assert_eq!(
            w,
            cost::attention_over(&g, visible, 0, 0, DType::F32).arithmetic(),
            "causal {causal}"
        );
        if !causal {
            assert_eq!(w, cost::attention_dense(&g, 0, DType::F32).arithmetic());
        }
    }
}

#[test]
fn counting_scalar_counts_what_it_is_told() {
    // The auditor itself must be able to fail: a softmax that divides per element instead of
    // multiplying by one reciprocal is a different algorithm with a different count.
    let x = row(6);
    let w = ticks(|| {
        let m = x.iter().fold(t(f64::NEG_INFINITY), |a, &v| a.max(v));
        let e: Vec<Tick> = x.iter().map(|&v| (v - m).special(f64::exp)).collect();
        let s = sum(&e);
        let _: Vec<Tick> = e.iter().map(|&v| v / s).collect();
    });
    assert_ne!(w, cost::softmax(1, 6, DType::F32).arithmetic());
    assert_eq!(
        w,
        Work {
            add: 18,
            special: 12,
            ..Work::ZERO
        }
    );
}
