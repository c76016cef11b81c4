//! The shipped digits MLP against NumPy's f64 logits (`models/digits/golden.json`, written
//! by `models/digits/train.py`) and its recorded held-out accuracy.

use tally_core::{measure, DType, Device, OpId};
use tally_models::digits::{Digits, DigitsMlp};
use tally_models::models_dir;

/// f32 forward through three layers of ≤ 128-term dot products: relative 1e-5 of the
/// logit scale (about 10), which is 1e-4 absolute.
const F32_ABS: f64 = 1e-4;

fn golden() -> (Vec<Vec<f64>>, f64) {
    let path = models_dir().join("digits/golden.json");
    let text = std::fs::read_to_string(&path).expect("golden.json is shipped");
    let v: serde_json::Value = serde_json::from_str(&text).expect("golden.json parses");
    let logits = v["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        })
        .collect();
    (logits, v["test_accuracy"].as_f64().expect("accuracy"))
}

fn setup(dtype: DType) -> (DigitsMlp, Digits) {
    let dir = models_dir().join("digits");
    let model = DigitsMlp::load(&dir.join("mlp.safetensors"), dtype).expect("model loads");
    let data = Digits::load(&dir.join("digits.csv.gz"))
        .expect("data loads")
        .held_out();
    (model, data)
}

#[test]
fn f32_logits_match_numpy() {
    let (model, data) = setup(DType::F32);
    let (want, _) = golden();
    let x = data.take(want.len()).tensor(Device::Cpu).unwrap();
    let got = model.forward(&x).unwrap().to_f64_vec().unwrap();
    let want: Vec<f64> = want.into_iter().flatten().collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= F32_ABS, "logit {i}: {g} vs numpy {w}");
    }
}

#[test]
fn held_out_accuracy_matches_training_script() {
    let (model, data) = setup(DType::F32);
    let (_, want) = golden();
    assert_eq!(data.len(), 360);
    let logits = model.forward(&data.tensor(Device::Cpu).unwrap()).unwrap();
    let acc = DigitsMlp::accuracy(&logits, &data.labels).unwrap();
    assert!(
        (acc - want).abs() < 1e-9,
        "accuracy {acc} vs script's {want}"
    );
}

#[test]
fn bf16_agrees_with_f32() {
    let (m32, data) = setup(DType::F32);
    let (m16, _) = setup(DType::BF16);
    let x = data.tensor(Device::Cpu).unwrap();
    let a = m32.forward(&x).unwrap().to_f64_vec().unwrap();
    let b = m16
        .forward(&x.to_dtype(DType::BF16).unwrap())
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cosine = dot / (norm(&a) * norm(&b));
    assert!(cosine >= 0.999, "bf16 logits cosine {cosine}");
}

#[test]
fn forward_counts_exactly_the_mlp_formula() {
    let (model, data) = setup(DType::F32);
    let x = data.tensor(Device::Cpu).unwrap();
    let (out, ledger) = measure(|| model.forward(&x));
    out.unwrap();
    let n = 360u64;
    let widths = [64u64, 128, 128, 10];
    // Each layer: n·in·out FMAs and n·out bias adds; ReLU after the two hidden layers.
    let fma: u64 = widths.windows(2).map(|w| n * w[0] * w[1]).sum();
    let bias_adds: u64 = widths[1..].iter().map(|o| n * o).sum();
    let relu_adds = n * (128 + 128);
    let total = ledger.total().work;
    assert_eq!(total.fma, fma);
    assert_eq!(total.add, bias_adds + relu_adds);
    assert_eq!(total.fpo(), 2 * fma + bias_adds + relu_adds);
    assert_eq!(ledger.contraction_fpo(), 2 * fma);
    assert_eq!(
        ledger
            .records()
            .iter()
            .filter(|r| r.op == OpId::Matmul)
            .count(),
        3
    );
    assert!(ledger.disagreements().next().is_none());
    let scopes: Vec<String> = ledger.by_scope(2).into_iter().map(|(s, _)| s).collect();
    assert_eq!(scopes, ["layers.0", "layers.1", "layers.2"]);
}

#[test]
fn width_family_reproduces_training_accuracy_and_scales_fpo() {
    let dir = tally_models::digits::family_dir(&models_dir());
    let members = tally_models::digits::family(&dir).expect("family.json is shipped");
    let data = Digits::load(&models_dir().join("digits/digits.csv.gz"))
        .unwrap()
        .held_out();
    let x = data.tensor(Device::Cpu).unwrap();
    let mut last_fpo = 0;
    for m in &members {
        let model = DigitsMlp::load(&dir.join(&m.file), DType::F32).unwrap();
        let (logits, ledger) = measure(|| model.forward(&x));
        let acc = DigitsMlp::accuracy(&logits.unwrap(), &data.labels).unwrap();
        assert!(
            (acc - m.test_accuracy).abs() < 1e-9,
            "{}: {acc} vs {}",
            m.file,
            m.test_accuracy
        );
        // Per example: 2·(64·w + w·w + w·10) matmul FPO, 3 bias adds per unit, 2·w ReLU compares.
        let w = m.hidden[0] as u64;
        let per_example = 2 * (64 * w + w * w + w * 10) + (w + w + 10) + 2 * w;
        assert_eq!(
            ledger.total().work.fpo(),
            per_example * data.len() as u64,
            "{}",
            m.file
        );
        assert!(ledger.total().work.fpo() > last_fpo);
        last_fpo = ledger.total().work.fpo();
    }
}

#[test]
fn matmul_fpo_equals_pytorch_flop_counter() {
    let path = models_dir().join("digits/flop_counter.json");
    let text = std::fs::read_to_string(&path).expect("flop_counter.json is shipped");
    let v: serde_json::Value = serde_json::from_str(&text).expect("flop_counter.json parses");
    let (model, data) = setup(DType::F32);
    assert_eq!(v["batch"].as_u64(), Some(data.len() as u64));
    let (out, ledger) = measure(|| model.forward(&data.tensor(Device::Cpu).unwrap()));
    let acc = DigitsMlp::accuracy(&out.unwrap(), &data.labels).unwrap();
    // 18,616,320 = 2·360·(64·128 + 128·128 + 128·10), as FlopCounterMode printed it.
    assert_eq!(
        Some(ledger.contraction_fpo()),
        v["flop_counter_total"].as_u64()
    );
    assert!((acc - v["accuracy"].as_f64().unwrap()).abs() < 1e-9);
}
