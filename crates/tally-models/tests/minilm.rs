//! all-MiniLM-L6-v2 against sentence-transformers (`models/minilm/golden.json`, written by
//! `models/minilm/golden.py`): token ids, f32 and bf16 embeddings, and the executed matrix
//! FPO against the architecture's formula and PyTorch's FlopCounterMode. The checkpoint is
//! not shipped: without `cache_dir()/all-minilm-l6-v2` (`models/fetch minilm`) the tests
//! that need it print why and pass.

use std::path::PathBuf;

use tally_core::{measure, DType, Ledger, OpId};
use tally_models::bert::{Bert, BertConfig, MINILM_DIR};
use tally_models::{cache_dir, models_dir};

/// f32 embeddings are unit vectors of 384 components after six layers of ≤ 1536-term
/// dot products; sentence-transformers' own f32 run differs from ours in summation order.
const F32_ABS: f64 = 1e-4;
/// bf16 keeps 8 mantissa bits in every weight and activation; the direction of each
/// embedding must still agree.
const BF16_MIN_COSINE: f64 = 0.999;

/// The golden file's contents.
struct Golden {
    sentences: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f64>>,
    flop_counter: serde_json::Value,
}

fn golden() -> Golden {
    let path = models_dir().join("minilm/golden.json");
    let text = std::fs::read_to_string(&path).expect("models/minilm/golden.json is shipped");
    let v: serde_json::Value = serde_json::from_str(&text).expect("golden.json parses");
    let rows = |key: &str| -> Vec<Vec<f64>> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is a list"))
            .iter()
            .map(|row| {
                row.as_array()
                    .expect("row")
                    .iter()
                    .map(|x| x.as_f64().expect("number"))
                    .collect()
            })
            .collect()
    };
    let ints = |key: &str| -> Vec<Vec<u32>> {
        rows(key)
            .into_iter()
            .map(|r| r.into_iter().map(|x| x as u32).collect())
            .collect()
    };
    Golden {
        sentences: v["sentences"]
            .as_array()
            .expect("sentences")
            .iter()
            .map(|s| s.as_str().expect("text").to_string())
            .collect(),
        input_ids: ints("input_ids"),
        attention_mask: ints("attention_mask"),
        embeddings: rows("embeddings"),
        flop_counter: v["flop_counter"].clone(),
    }
}

/// The model folder, or `None` (with the reason on stderr) when it has not been fetched.
fn model_dir() -> Option<PathBuf> {
    let dir = cache_dir().join(MINILM_DIR);
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} not found; run models/fetch minilm",
            dir.display()
        );
        None
    }
}

fn load(dtype: DType) -> Option<Bert> {
    model_dir().map(|dir| Bert::load(&dir, dtype).expect("all-MiniLM-L6-v2 loads"))
}

fn texts(g: &Golden) -> Vec<&str> {
    g.sentences.iter().map(String::as_str).collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn fc_u64(g: &Golden, key: &str) -> u64 {
    g.flop_counter[key]
        .as_u64()
        .unwrap_or_else(|| panic!("flop_counter.{key}"))
}

#[test]
fn missing_folder_names_models_fetch() {
    let empty = tempfile::tempdir().expect("temp dir");
    let err = Bert::load(empty.path(), DType::F32).expect_err("an empty folder cannot load");
    let msg = err.to_string();
    assert!(msg.contains("models/fetch minilm"), "{msg}");
    assert!(msg.contains("config.json"), "{msg}");
}

#[test]
fn tokenizer_matches_sentence_transformers() {
    let Some(model) = load(DType::F32) else {
        return;
    };
    let g = golden();
    let batch = model.tokenize(&texts(&g)).unwrap();
    let (b, s) = (g.input_ids.len(), g.input_ids[0].len());
    assert_eq!(batch.ids.dims(), [b, s]);
    let ids = batch.ids.to_vec::<u32>().unwrap();
    let mask = batch.mask.to_vec::<u32>().unwrap();
    assert_eq!(ids, g.input_ids.concat());
    assert_eq!(mask, g.attention_mask.concat());
    let lengths: Vec<usize> = g
        .attention_mask
        .iter()
        .map(|r| r.iter().filter(|&&m| m != 0).count())
        .collect();
    assert_eq!(batch.lengths, lengths);
}

#[test]
fn long_text_is_truncated_to_max_seq_length() {
    let Some(model) = load(DType::F32) else {
        return;
    };
    let long = "tally ".repeat(400);
    let batch = model.tokenize(&[&long, "short"]).unwrap();
    assert_eq!(batch.ids.dims(), [2, 256]);
    assert_eq!(batch.lengths, [256, 3]);
    let ids = batch.ids.to_vec::<u32>().unwrap();
    assert_eq!((ids[0], ids[255]), (101, 102)); // [CLS] … [SEP] survive truncation
}

#[test]
fn f32_embeddings_match_sentence_transformers() {
    let Some(model) = load(DType::F32) else {
        return;
    };
    let g = golden();
    let emb = model.embed(&texts(&g)).unwrap();
    assert_eq!(emb.dims(), [g.sentences.len(), 384]);
    let got = emb.to_f64_vec().unwrap();
    let want = g.embeddings.concat();
    let max_err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("f32 max abs error vs sentence-transformers: {max_err:.3e}");
    assert!(max_err <= F32_ABS, "max abs error {max_err}");
    for row in got.chunks(384) {
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn bf16_embeddings_point_the_same_way() {
    let Some(model) = load(DType::BF16) else {
        return;
    };
    let g = golden();
    let emb = model.embed(&texts(&g)).unwrap();
    assert_eq!(emb.dtype(), DType::BF16);
    let got = emb.to_f64_vec().unwrap();
    for (i, (a, b)) in got.chunks(384).zip(&g.embeddings).enumerate() {
        let c = cosine(a, b);
        eprintln!("bf16 cosine, sentence {i}: {c:.6}");
        assert!(c >= BF16_MIN_COSINE, "sentence {i}: cosine {c}");
    }
}

#[test]
fn formula_is_flop_counter_mode_less_the_pooler() {
    // Pure arithmetic against golden.py's FlopCounterMode figures (no checkpoint needed):
    // sentence-transformers also runs BERT's pooler, a dense H×H layer over [CLS] whose
    // output it discards, 2·B·H² FPO that Tally's encoder does not compute.
    let g = golden();
    let h = 384u64;
    let (b, s) = (fc_u64(&g, "batch"), fc_u64(&g, "seq"));
    let pooler = |b: u64| 2 * b * h * h;
    let ours = Bert::analytic_matmul_fpo(b as usize, s as usize);
    assert_eq!(ours + pooler(b), fc_u64(&g, "matmul_fpo"));
    let single = Bert::analytic_matmul_fpo(1, fc_u64(&g, "single_seq") as usize);
    assert_eq!(single + pooler(1), fc_u64(&g, "single_matmul_fpo"));
    // The formula written out once: 2·L·[B·S·(4H² + 2HI) + 2·B·S²·H] at B = 1, S = 10.
    assert_eq!(
        BertConfig::all_minilm_l6_v2().analytic_matmul_fpo(1, 10),
        2 * 6 * (10 * (4 * 384 * 384 + 2 * 384 * 1536) + 2 * 10 * 10 * 384)
    );
}

/// Runs `embed` on `texts` under the meter; every op but attention must count exactly
/// its analytic formula.
fn measured(model: &Bert, texts: &[&str]) -> Ledger {
    let (emb, ledger) = measure(|| model.embed(texts));
    emb.unwrap();
    for r in ledger.disagreements() {
        assert_eq!(r.op, OpId::Attention, "{} in {} disagrees", r.op, r.scope);
    }
    ledger
}

#[test]
fn unpadded_batches_count_the_dense_formula() {
    let Some(model) = load(DType::F32) else {
        return;
    };
    let g = golden();
    let one = [g.sentences[0].as_str()];
    let same = [g.sentences[1].as_str(); 3];
    for batch in [&one[..], &same[..]] {
        let s = model.tokenize(batch).unwrap().ids.dims()[1];
        let ledger = measured(&model, batch);
        let want = Bert::analytic_matmul_fpo(batch.len(), s);
        eprintln!("unpadded {}x{s}: {} matmul FPO", batch.len(), want);
        assert_eq!(ledger.contraction_fpo(), want);
        assert_eq!(ledger.contraction_fpo_analytic(), want);
        assert!(ledger.disagreements().next().is_none());
    }
    // One sentence of golden.py's: FlopCounterMode's count less the pooler's 2·H².
    let ledger = measured(&model, &one);
    assert_eq!(
        ledger.contraction_fpo() + 2 * 384 * 384,
        fc_u64(&g, "single_matmul_fpo")
    );
    let scopes: Vec<String> = ledger.by_scope(3).into_iter().map(|(s, _)| s).collect();
    let mut want = vec!["embeddings".to_string()];
    for i in 0..6 {
        want.push(format!("layer.{i}.attention"));
        want.push(format!("layer.{i}.ffn"));
    }
    want.push("pooling".into());
    assert_eq!(scopes, want);
}

#[test]
fn padded_keys_are_skipped_exactly() {
    let Some(model) = load(DType::F32) else {
        return;
    };
    let g = golden();
    let texts = texts(&g);
    let ledger = measured(&model, &texts);
    let (b, s) = (g.attention_mask.len(), g.attention_mask[0].len());
    let (layers, heads, d) = (6u64, 12u64, 32u64);
    // Every query row, padded or not, sees the real keys of its sequence.
    let visible_per_head: u64 = g
        .attention_mask
        .iter()
        .map(|row| s as u64 * row.iter().map(|&m| m as u64).sum::<u64>())
        .sum();
    let skipped = layers * heads * ((b * s * s) as u64 - visible_per_head);
    // Each skipped (query, key) pair saves d FMAs of q·k and d of p·v: 4·d FPO.
    let saved = skipped * 4 * d;
    let dense = Bert::analytic_matmul_fpo(b, s);
    eprintln!(
        "padded {b}x{s}: dense {dense}, executed {}, skipped pairs {skipped}",
        ledger.contraction_fpo()
    );
    assert!(saved > 0);
    assert_eq!(ledger.contraction_fpo_analytic(), dense);
    assert_eq!(ledger.contraction_fpo(), dense - saved);
    // Golden lengths 14, 9, 22 padded to 22: 6·12·22·(8 + 13 + 0) pairs skipped.
    assert_eq!(skipped, 6 * 12 * 22 * 21);
    let attention = ledger
        .records()
        .iter()
        .filter(|r| r.op == OpId::Attention)
        .count();
    assert_eq!(attention, 6);
}

#[test]
fn seeded_weights_have_the_checkpoints_shapes_and_work() {
    let (Some(dir), Some(real)) = (model_dir(), load(DType::F32)) else {
        return;
    };
    let seeded = Bert::seeded(&dir, DType::F32, tally_core::Device::Cpu, 3).unwrap();
    let texts = ["a short sentence", "and a second, somewhat longer one"];
    let (er, lr) = measure(|| real.embed(&texts));
    let (es, ls) = measure(|| seeded.embed(&texts));
    let (er, es) = (er.unwrap(), es.unwrap());
    assert_eq!(er.dims(), es.dims());
    assert_eq!(ls.total().calls, lr.total().calls);
    assert_eq!(
        ls.total().work,
        lr.total().work,
        "same ops, same counted work"
    );
    assert_ne!(er.to_vec::<f32>().unwrap(), es.to_vec::<f32>().unwrap());
    assert!(es.to_vec::<f32>().unwrap().iter().all(|v| v.is_finite()));
}
