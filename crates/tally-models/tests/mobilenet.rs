//! MobileNetV2 against torchvision (`models/mobilenet/golden.json`, written by
//! `models/mobilenet/golden.py`): f32 logits on a closed-form synthetic batch and on
//! china.jpg (`models/mobilenet/china_224.safetensors`, torchvision's preprocessed input),
//! the top-5 classes, a bf16 run's top-1, and the executed matrix FPO against the
//! architecture's formula and PyTorch's FlopCounterMode. The checkpoint is not shipped:
//! without `cache_dir()/mobilenet-v2` (`models/fetch mobilenet`) the tests that need it
//! print why and pass.

use std::path::PathBuf;

use tally_core::{measure, DType, Device};
use tally_models::mobilenet::{arch, top_k, MobileNetV2, MOBILENET_DIR};
use tally_models::{cache_dir, models_dir};
use tally_nn::WeightStore;
use tally_tensor::Tensor;

/// f32 logits (magnitudes up to ~20) after 52 convolutions of up to 960·9-term sums;
/// torchvision runs the BatchNorms unfolded and sums in another order.
const F32_ABS: f64 = 1e-3;
/// ImageNet's class 698, "palace": china.jpg's top-1.
const PALACE: usize = 698;

fn golden() -> serde_json::Value {
    let path = models_dir().join("mobilenet/golden.json");
    let text = std::fs::read_to_string(&path).expect("models/mobilenet/golden.json is shipped");
    serde_json::from_str(&text).expect("golden.json parses")
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// The golden top-5 class indices of one `top5` list.
fn top5_indices(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .expect("top5 is a list")
        .iter()
        .map(|t| t["index"].as_u64().expect("index") as usize)
        .collect()
}

/// The model folder, or `None` (with the reason on stderr) when it has not been fetched.
fn model_dir() -> Option<PathBuf> {
    let dir = cache_dir().join(MOBILENET_DIR);
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} not found; run models/fetch mobilenet",
            dir.display()
        );
        None
    }
}

fn load(dtype: DType) -> Option<MobileNetV2> {
    model_dir().map(|dir| MobileNetV2::load(&dir, dtype).expect("MobileNetV2 loads"))
}

/// golden.py's synthetic batch: element i (flat, row-major) is sin(0.001·i) in f64, rounded
/// to f32.
fn synthetic(shape: [usize; 4]) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| ((i as f64) * 0.001).sin() as f32).collect();
    Tensor::from_vec(data, shape, Device::Cpu).unwrap()
}

/// torchvision's preprocessed china.jpg, (3, 224, 224), widened from the shipped f16.
fn china() -> Tensor {
    let store = WeightStore::open(models_dir().join("mobilenet/china_224.safetensors"))
        .expect("models/mobilenet/china_224.safetensors is shipped");
    store.get("image", [3, 224, 224], DType::F32).unwrap()
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn argsort_top5(logits: &[f64]) -> Vec<usize> {
    let p: Vec<f32> = logits.iter().map(|&x| x as f32).collect();
    top_k(&p, 5).into_iter().map(|(i, _)| i).collect()
}

#[test]
fn missing_checkpoint_names_models_fetch() {
    let empty = tempfile::tempdir().expect("temp dir");
    let err = MobileNetV2::load(empty.path(), DType::F32).expect_err("an empty folder");
    let msg = err.to_string();
    assert!(msg.contains("models/fetch mobilenet"), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn formula_equals_flop_counter_mode() {
    // Pure arithmetic against golden.py's FlopCounterMode figure (no checkpoint needed).
    let g = golden();
    let fc = &g["synthetic"]["flop_counter"];
    let shape: Vec<usize> = floats(&g["synthetic"]["shape"])
        .into_iter()
        .map(|x| x as usize)
        .collect();
    let total = fc["total"].as_u64().unwrap();
    assert_eq!(arch::contraction_fpo(shape[0], shape[2], shape[3]), total);
    // The classifier alone: 2·n·1280·1000 (FlopCounterMode's aten.addmm).
    assert_eq!(
        fc["by_op"]["aten.addmm"].as_u64().unwrap(),
        2 * 2 * 1280 * 1000
    );
    assert_eq!(g["params"].as_u64().unwrap() as usize, arch::num_params());
}

#[test]
fn f32_synthetic_logits_and_fpo_match_torchvision() {
    let Some(model) = load(DType::F32) else {
        return;
    };
    let g = golden();
    let x = synthetic([2, 3, 224, 224]);
    let (logits, ledger) = measure(|| model.forward(&x));
    let logits = logits.unwrap();
    assert_eq!(logits.dims(), [2, 1000]);
    let got = logits.to_f64_vec().unwrap();
    for (row, (ours, want)) in got
        .chunks(1000)
        .zip(g["synthetic"]["logits"].as_array().unwrap())
        .enumerate()
    {
        let want = floats(want);
        let err = max_abs(ours, &want);
        eprintln!("synthetic row {row}: max abs logit error vs torchvision {err:.3e}");
        assert!(err <= F32_ABS, "row {row}: max abs error {err}");
        let golden_top5 = top5_indices(&g["synthetic"]["top5"][row]);
        assert_eq!(argsort_top5(ours), golden_top5, "row {row}");
    }
    // Executed convolution + matmul FPO = the architecture's formula = FlopCounterMode's
    // total: im2col multiplies the padding taps, as FlopCounterMode's dense count assumes,
    // and bias adds (folded BatchNorm shifts, the classifier's bias) are outside both.
    let executed = ledger.contraction_fpo();
    let fc_total = g["synthetic"]["flop_counter"]["total"].as_u64().unwrap();
    eprintln!(
        "synthetic (2, 3, 224, 224): executed contraction FPO {executed}, analytic {}, \
         FlopCounterMode {fc_total}, all FPO {}",
        model.contraction_fpo(2, 224, 224),
        ledger.total().work.fpo()
    );
    assert_eq!(executed, model.contraction_fpo(2, 224, 224));
    assert_eq!(executed, fc_total);
    assert_eq!(ledger.contraction_fpo_analytic(), executed);
    for scope in [
        "features.0",
        "features.17",
        "features.18",
        "pool",
        "classifier",
    ] {
        assert!(
            ledger.records().iter().any(|r| r.scope.starts_with(scope)),
            "no record under scope {scope}"
        );
    }
}

#[test]
fn f32_china_is_a_palace() {
    let Some(model) = load(DType::F32) else {
        return;
    };
    let g = golden();
    let image = china();
    let top5 = model.classify(&image).unwrap();
    eprintln!("china.jpg top-5 (index, prob): {top5:?}");
    assert_eq!(top5[0].0, PALACE);
    let ours: Vec<usize> = top5.iter().map(|t| t.0).collect();
    assert_eq!(ours, top5_indices(&g["china"]["top5"]));
    for (t, want) in top5.iter().zip(g["china"]["top5"].as_array().unwrap()) {
        let p = want["prob"].as_f64().unwrap();
        assert!(
            (f64::from(t.1) - p).abs() < 1e-4,
            "class {}: {} vs {p}",
            t.0,
            t.1
        );
    }
    let logits = model
        .forward(&image.unsqueeze(0).unwrap())
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let err = max_abs(&logits, &floats(&g["china"]["logits"]));
    eprintln!("china.jpg: max abs logit error vs torchvision {err:.3e}");
    assert!(err <= F32_ABS, "max abs error {err}");
}

#[test]
fn bf16_top1_agrees() {
    let Some(model) = load(DType::BF16) else {
        return;
    };
    let g = golden();
    let top5 = model.classify(&china()).unwrap();
    eprintln!("bf16 china.jpg top-5: {top5:?}");
    assert_eq!(top5[0].0, PALACE);
    let logits = model.forward(&synthetic([2, 3, 224, 224])).unwrap();
    assert_eq!(logits.dtype(), DType::BF16);
    let got = logits.to_f64_vec().unwrap();
    for (row, ours) in got.chunks(1000).enumerate() {
        let golden_top1 = top5_indices(&g["synthetic"]["top5"][row])[0];
        eprintln!(
            "bf16 synthetic row {row}: top-5 {:?}, max abs logit error {:.3e}",
            argsort_top5(ours),
            max_abs(ours, &floats(&g["synthetic"]["logits"][row]))
        );
        assert_eq!(argsort_top5(ours)[0], golden_top1, "row {row}");
    }
}
