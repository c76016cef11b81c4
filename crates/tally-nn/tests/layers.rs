//! Layers against naive f64 references, loaded from real files, with their kernel work pinned.

mod common;

use common::{f32_bytes, ramp, write_good};
use safetensors::Dtype;
use tally_core::{measure, DType, Device, OpId};
use tally_nn::{
    Activation, Conv2d, Conv2dParams, Embedding, LayerNorm, Linear, RmsNorm, WeightStore,
};
use tally_tensor::Tensor;

/// f32 tolerance: |got − want| ≤ F32_REL · scale, where scale is the sum of the absolute
/// terms of the exact f64 expression (the bound summation error grows against), so
/// cancellation near zero does not make a correct result fail.
const F32_REL: f64 = 1e-5;

fn assert_close(got: &[f64], want: &[f64], scale: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        assert!(
            (g - w).abs() <= F32_REL * s.max(1e-30),
            "element {i}: got {g}, want {w} (scale {s})"
        );
    }
}

fn tensor(v: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape, Device::Cpu).unwrap()
}

/// y[r, o] = Σ_i x[r, i]·w[o, i] + b[o] in f64, with the tolerance scale Σ|x·w| + |b|.
fn naive_linear(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    inp: usize,
    out: usize,
) -> (Vec<f64>, Vec<f64>) {
    let rows = x.len() / inp;
    let (mut y, mut scale) = (Vec::new(), Vec::new());
    for r in 0..rows {
        for o in 0..out {
            let bias = b.map_or(0.0, |b| b[o] as f64);
            let terms = (0..inp).map(|i| x[r * inp + i] as f64 * w[o * inp + i] as f64);
            y.push(terms.clone().sum::<f64>() + bias);
            scale.push(terms.map(f64::abs).sum::<f64>() + bias.abs());
        }
    }
    (y, scale)
}

#[test]
fn linear_matches_naive_f64() {
    let (inp, out) = (37, 19); // odd sizes, off every kernel tile
    let dir = tempfile::tempdir().unwrap();
    let (w, b) = (ramp(out * inp), ramp(out + 3)[3..].to_vec());
    let path = write_good(
        dir.path(),
        "lin.safetensors",
        &[
            ("proj.weight", Dtype::F32, vec![out, inp], f32_bytes(&w)),
            ("proj.bias", Dtype::F32, vec![out], f32_bytes(&b)),
        ],
    );
    let store = WeightStore::open(&path).unwrap();
    let x: Vec<f32> = ramp(2 * 3 * inp + 5)[5..].to_vec();
    for bias in [true, false] {
        let lin = Linear::load(&store.pp("proj"), inp, out, bias).unwrap();
        let y = lin.forward(&tensor(x.clone(), &[2, 3, inp])).unwrap();
        assert_eq!(y.dims(), &[2, 3, out]);
        let (want, scale) = naive_linear(&x, &w, bias.then_some(&b[..]), inp, out);
        assert_close(&y.to_f64_vec().unwrap(), &want, &scale);
    }
}

#[test]
fn linear_runs_one_counted_matmul() {
    let (rows, inp, out) = (6, 8, 5);
    let lin = Linear::new(
        tensor(ramp(out * inp), &[out, inp]),
        Some(tensor(ramp(out), &[out])),
    )
    .unwrap();
    let x = tensor(ramp(rows * inp), &[2, 3, inp]);
    let (y, ledger) = measure(|| lin.forward(&x));
    assert_eq!(y.unwrap().dims(), &[2, 3, out]);
    let records = ledger.records();
    assert_eq!(records.len(), 1, "reshapes and the transpose are views");
    assert_eq!(records[0].op, OpId::Matmul);
    assert_eq!(records[0].work.fma, (rows * out * inp) as u64);
    assert_eq!(records[0].work.add, (rows * out) as u64); // the bias epilogue
}

#[test]
fn linear_rejects_wrong_input_width() {
    let lin = Linear::new(tensor(ramp(6), &[2, 3]), None).unwrap();
    assert!(lin.forward(&tensor(ramp(8), &[2, 4])).is_err());
    assert!(Linear::new(tensor(ramp(6), &[6]), None).is_err());
}

#[test]
fn norms_match_naive_f64() {
    let (rows, dim, eps) = (3, 11, 1e-5);
    let (x, w, b) = (
        ramp(rows * dim),
        ramp(dim + 2)[2..].to_vec(),
        ramp(dim + 7)[7..].to_vec(),
    );
    let store = WeightStore::from_tensors([
        ("ln.weight".to_string(), tensor(w.clone(), &[dim])),
        ("ln.bias".to_string(), tensor(b.clone(), &[dim])),
    ])
    .unwrap();
    let ln = LayerNorm::load(&store.pp("ln"), dim, eps).unwrap();
    let rms = RmsNorm::load(&store.pp("ln"), dim, eps).unwrap();
    let xt = tensor(x.clone(), &[rows, dim]);
    let (got_ln, got_rms) = (
        ln.forward(&xt).unwrap().to_f64_vec().unwrap(),
        rms.forward(&xt).unwrap().to_f64_vec().unwrap(),
    );
    let (mut want_ln, mut want_rms, mut scale) = (Vec::new(), Vec::new(), Vec::new());
    for row in x.chunks(dim) {
        let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        let mean = row.iter().sum::<f64>() / dim as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dim as f64;
        let ms = row.iter().map(|v| v * v).sum::<f64>() / dim as f64;
        for (i, v) in row.iter().enumerate() {
            let n = (v - mean) / (var + eps).sqrt();
            want_ln.push(n * w[i] as f64 + b[i] as f64);
            want_rms.push(v / (ms + eps).sqrt() * w[i] as f64);
            scale.push(n.abs().max(1.0) * (w[i] as f64).abs() + (b[i] as f64).abs());
        }
    }
    assert_close(&got_ln, &want_ln, &scale);
    assert_close(&got_rms, &want_rms, &scale);
}

#[test]
fn embedding_gathers_rows() {
    let (vocab, dim) = (5, 3);
    let table = ramp(vocab * dim);
    let emb = Embedding::new(tensor(table.clone(), &[vocab, dim])).unwrap();
    assert_eq!((emb.vocab_size(), emb.dim()), (vocab, dim));
    let ids = Tensor::from_vec(vec![4u32, 0, 4], [3], Device::Cpu).unwrap();
    let got = emb.forward(&ids).unwrap();
    assert_eq!(got.dims(), &[3, dim]);
    let want: Vec<f32> = [4, 0, 4]
        .iter()
        .flat_map(|&r| table[r * dim..(r + 1) * dim].to_vec())
        .collect();
    assert_eq!(got.to_vec::<f32>().unwrap(), want);
    let ids64 = Tensor::from_vec(vec![1i64], [1], Device::Cpu).unwrap();
    assert_eq!(
        emb.forward(&ids64).unwrap().to_vec::<f32>().unwrap(),
        table[dim..2 * dim]
    );
    assert!(emb
        .forward(&Tensor::from_vec(vec![9u32], [1], Device::Cpu).unwrap())
        .is_err());
}

#[test]
fn conv2d_matches_naive_f64() {
    let (c_in, c_out, k, h, w) = (2, 3, 3, 5, 4);
    let p = Conv2dParams {
        stride: 1,
        padding: 1,
        groups: 1,
        activation: tally_core::backend::ConvActivation::None,
    };
    let (wt, b, x) = (ramp(c_out * c_in * k * k), ramp(c_out), ramp(c_in * h * w));
    let store = WeightStore::from_tensors([
        (
            "c.weight".to_string(),
            tensor(wt.clone(), &[c_out, c_in, k, k]),
        ),
        ("c.bias".to_string(), tensor(b.clone(), &[c_out])),
    ])
    .unwrap();
    let conv = Conv2d::load(&store.pp("c"), c_in, c_out, k, p, true).unwrap();
    let got = conv.forward(&tensor(x.clone(), &[1, c_in, h, w])).unwrap();
    assert_eq!(got.dims(), &[1, c_out, h, w]);
    let (mut want, mut scale) = (Vec::new(), Vec::new());
    for o in 0..c_out {
        for (yy, xx) in (0..h).flat_map(|yy| (0..w).map(move |xx| (yy, xx))) {
            let (mut acc, mut abs) = (b[o] as f64, (b[o] as f64).abs());
            for (c, dy, dx) in
                (0..c_in).flat_map(|c| (0..k).flat_map(move |dy| (0..k).map(move |dx| (c, dy, dx))))
            {
                let (iy, ix) = ((yy + dy) as isize - 1, (xx + dx) as isize - 1);
                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                    continue;
                }
                let term = x[(c * h + iy as usize) * w + ix as usize] as f64
                    * wt[((o * c_in + c) * k + dy) * k + dx] as f64;
                acc += term;
                abs += term.abs();
            }
            want.push(acc);
            scale.push(abs);
        }
    }
    assert_close(&got.to_f64_vec().unwrap(), &want, &scale);
}

#[test]
fn activations_parse_and_apply() {
    let x = tensor(vec![-2.0, -0.5, 0.0, 1.5], &[4]);
    for (name, act) in [
        ("relu", Activation::Relu),
        ("gelu", Activation::GeluErf),
        ("gelu_new", Activation::GeluTanh),
        ("gelu_pytorch_tanh", Activation::GeluTanh),
        ("SiLU", Activation::Silu),
        ("swish", Activation::Silu),
        ("tanh", Activation::Tanh),
        ("identity", Activation::Identity),
    ] {
        assert_eq!(name.parse::<Activation>().unwrap(), act);
        assert_eq!(act.name().parse::<Activation>().unwrap(), act);
    }
    assert!("mish".parse::<Activation>().is_err());
    let from_json: Activation = serde_json::from_str("\"gelu_new\"").unwrap();
    assert_eq!(from_json, Activation::GeluTanh);

    let xs = [-2.0f64, -0.5, 0.0, 1.5];
    type Reference = fn(f64) -> f64;
    let refs: [(Activation, Reference); 4] = [
        (Activation::Relu, |v| v.max(0.0)),
        (Activation::Silu, |v| v / (1.0 + (-v).exp())),
        (Activation::Tanh, f64::tanh),
        (Activation::Identity, |v| v),
    ];
    for (act, f) in refs {
        let got = act.forward(&x).unwrap().to_f64_vec().unwrap();
        let want: Vec<f64> = xs.iter().map(|&v| f(v)).collect();
        let scale: Vec<f64> = want.iter().map(|v| v.abs().max(1.0)).collect();
        assert_close(&got, &want, &scale);
    }
    let gelu_tanh = Activation::GeluTanh
        .forward(&x)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let want: Vec<f64> = xs
        .iter()
        .map(|&v| {
            0.5 * v
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh())
        })
        .collect();
    assert_close(&gelu_tanh, &want, &[1.0; 4]);
}

#[test]
fn layers_load_in_the_views_dtype() {
    let store =
        WeightStore::from_tensors([("l.weight".to_string(), tensor(ramp(6), &[2, 3]))]).unwrap();
    let lin = Linear::load(&store.pp("l").with_dtype(DType::BF16), 3, 2, false).unwrap();
    assert_eq!(lin.weight().unwrap().dtype(), DType::BF16);
    let err = Linear::load(&store.pp("l"), 3, 2, true).unwrap_err();
    assert!(err.to_string().contains("`l.bias`"), "{err}");
}

#[test]
fn packed_linear_matches_the_plain_product_and_counts_alike() {
    // An f32 layer holds its weight packed (a bf16 one too, as bf16 pairs, where the host
    // has AVX-512 BF16); the same weight in a shared (unpacked) layer is the reference:
    // same outputs, same recorded work, for many rows and for one. The odd in_dim leaves
    // a last k-pair half empty.
    let (out_dim, in_dim) = (37, 71);
    let w: Vec<f32> = (0..out_dim * in_dim)
        .map(|i| ((i * 7919) % 113) as f32 / 113.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..out_dim).map(|i| i as f32 * 0.01).collect();
    for (dtype, tol) in [(DType::F32, 1e-5f32), (DType::BF16, 1e-2)] {
        println!(
            "{dtype:?}: weight {}",
            if tally_tensor::packs(dtype) {
                "packed"
            } else {
                "plain (not packed on this host)"
            }
        );
        let wt = Tensor::from_vec(w.clone(), [out_dim, in_dim], Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let bt = Tensor::from_vec(b.clone(), [out_dim], Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let packed = Linear::new(wt.clone(), Some(bt.clone())).unwrap();
        let plain = Linear::shared(wt.clone(), Some(bt)).unwrap();
        let as_f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(as_f32(&packed.weight().unwrap()), as_f32(&wt));
        for rows in [1usize, 3, 50] {
            let x: Vec<f32> = (0..rows * in_dim)
                .map(|i| ((i * 31) % 17) as f32 / 17.0)
                .collect();
            let x = Tensor::from_vec(x, [rows, in_dim], Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let (y, lp) = tally_core::try_measure(|| packed.forward(&x)).unwrap();
            let (z, lq) = tally_core::try_measure(|| plain.forward(&x)).unwrap();
            assert_eq!(y.dtype(), dtype);
            for (a, b) in as_f32(&y).iter().zip(&as_f32(&z)) {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{dtype:?} {rows} rows: {a} vs {b}"
                );
            }
            let (rp, rq) = (&lp.records()[0], &lq.records()[0]);
            assert_eq!(rp.work, rq.work, "{rows} rows");
            assert_eq!(rp.work, rp.analytic, "{rows} rows");
            // m·n·k FMAs and one bias add per output.
            assert_eq!(rp.work.fma, (rows * out_dim * in_dim) as u64);
            assert_eq!(rp.work.add, (rows * out_dim) as u64);

            // With an activation: one record for the packed weight (the GELU applied by
            // the product), a matmul and a gelu_erf for the plain one; the same values and
            // the same arithmetic in total.
            let gelu = tally_core::UnaryOp::GeluErf;
            let (y, lp) = tally_core::try_measure(|| packed.forward_activated(&x, gelu)).unwrap();
            let (z, lq) = tally_core::try_measure(|| plain.forward_activated(&x, gelu)).unwrap();
            for (a, b) in as_f32(&y).iter().zip(&as_f32(&z)) {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{dtype:?} {rows} rows, gelu: {a} vs {b}"
                );
            }
            let fpo = |l: &tally_core::Ledger| {
                let w = l
                    .records()
                    .iter()
                    .fold(tally_core::Work::ZERO, |s, r| s + r.work);
                (w.add, w.mul, w.fma, w.special)
            };
            let packed_records = if tally_tensor::packs(dtype) { 1 } else { 2 };
            assert_eq!(lp.records().len(), packed_records, "{rows} rows");
            assert_eq!(lq.records().len(), 2, "{rows} rows");
            assert_eq!(fpo(&lp), fpo(&lq), "{rows} rows, gelu");
            assert_eq!(lp.records()[0].work, lp.records()[0].analytic);
        }
    }
}
