//! SmolLM2-135M-Instruct against transformers on the same dequantised GGUF weights
//! (`models/smollm2/golden.json`, written by `models/smollm2/golden.py`): prompt token ids,
//! f32 last-position logits, the greedy 20 tokens with a KV cache, and the executed matrix
//! FPO of prefill and decode steps against the architecture's formula and PyTorch's
//! FlopCounterMode; batched generation of right-padded prompts against each prompt alone,
//! and its masked attention counting only the visible pairs. The checkpoint is not shipped: without `cache_dir()/smollm2`
//! (`models/fetch smollm2`) the tests that need it print why and pass.

use std::path::PathBuf;
use std::sync::OnceLock;

use tally_core::cost::{attention_over, AttentionGeometry};
use tally_core::{measure, DType, Device, OpId, Work};
use tally_models::llama::{Llama, LlamaConfig, Sampling, GGUF_FILE, SMOLLM2_DIR};
use tally_models::{cache_dir, models_dir};
use tally_tensor::Tensor;

/// f32 logits come out of 30 layers of ≤ 1536-term dot products and a 576-term head;
/// transformers' f32 run differs from ours in summation order (and in the q/k row order,
/// which RoPE makes equivalent).
const F32_ABS: f64 = 1e-3;

fn golden() -> serde_json::Value {
    let path = models_dir().join("smollm2/golden.json");
    let text = std::fs::read_to_string(&path).expect("models/smollm2/golden.json is shipped");
    serde_json::from_str(&text).expect("golden.json parses")
}

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_u64().expect("an integer") as u32)
        .collect()
}

fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// The f32 model, loaded once for every test; `None` (reason on stderr) when not fetched.
fn model() -> Option<&'static Llama> {
    static MODEL: OnceLock<Option<Llama>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir: PathBuf = cache_dir().join(SMOLLM2_DIR);
            if !dir.join(GGUF_FILE).is_file() {
                return None;
            }
            Some(Llama::load(&dir, DType::F32).expect("SmolLM2-135M-Instruct loads"))
        })
        .as_ref()
        .or_else(|| {
            let dir = cache_dir().join(SMOLLM2_DIR);
            eprintln!(
                "skipping: {} not found; run models/fetch smollm2",
                dir.display()
            );
            None
        })
}

fn prompt_tensor(ids: &[u32]) -> Tensor {
    Tensor::from_vec(ids.to_vec(), [1, ids.len()], Device::Cpu).unwrap()
}

#[test]
fn missing_file_names_models_fetch() {
    let empty = tempfile::tempdir().expect("temp dir");
    let err = Llama::load(empty.path(), DType::F32).expect_err("an empty folder cannot load");
    let msg = err.to_string();
    assert!(msg.contains("models/fetch smollm2"), "{msg}");
    assert!(msg.contains(GGUF_FILE), "{msg}");
}

#[test]
fn formula_is_flop_counter_mode() {
    // Pure arithmetic against golden.py's FlopCounterMode figure (no checkpoint needed).
    let g = golden();
    let fc = &g["flop_counter"];
    let s = fc["seq"].as_u64().unwrap() as usize;
    let c = LlamaConfig::smollm2_135m();
    assert_eq!(c.dense_fpo(1, s, 0), fc["matmul_fpo"].as_u64().unwrap());
    // N_matmul written out: L·(2·H·h·d + 2·H·h_kv·d + 3·H·I) + V·H.
    let n = 30 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536) + 49152 * 576;
    assert_eq!(c.matmul_params(), n);
    assert_eq!(n, 134_479_872);
    // Prefill of 5: 2·5·N + 2·2·L·h·5·5·d, of which the causal mask skips 10 pairs a head.
    assert_eq!(c.dense_fpo(1, 5, 0), 2 * 5 * n + 4 * 30 * 9 * 5 * 5 * 64);
    assert_eq!(c.causal_skipped_pairs(1, 5), 30 * 9 * 10);
    assert_eq!(
        c.causal_fpo(1, 5, 0),
        c.dense_fpo(1, 5, 0) - 30 * 9 * 10 * 4 * 64
    );
    // A decode step after 7 positions: one query over 8 keys, nothing skipped.
    assert_eq!(c.causal_fpo(1, 1, 7), 2 * n + 4 * 30 * 9 * 8 * 64);
    assert_eq!(c.causal_fpo(1, 1, 7), c.dense_fpo(1, 1, 7));
}

#[test]
fn prompt_tokens_match_transformers() {
    let Some(model) = model() else {
        return;
    };
    let g = golden();
    let prompt = g["prompt"].as_str().unwrap();
    assert_eq!(
        model.tokenizer().encode(prompt).unwrap(),
        u32s(&g["input_ids"])
    );
    let text = g["generated_text"].as_str().unwrap();
    let generated = u32s(&g["generated_ids"]);
    assert_eq!(model.tokenizer().decode(&generated).unwrap(), text);
    assert_eq!(model.tokenizer().encode(text).unwrap(), generated);
}

#[test]
fn config_and_params_are_smollm2_135m() {
    let Some(model) = model() else {
        return;
    };
    assert_eq!(model.config(), &LlamaConfig::smollm2_135m());
    assert_eq!(model.num_params(), 134_515_008);
}

#[test]
fn f32_last_logits_match_transformers() {
    let Some(model) = model() else {
        return;
    };
    let g = golden();
    let ids = u32s(&g["input_ids"]);
    let mut cache = model.new_cache();
    let logits = model.forward(&prompt_tensor(&ids), &mut cache).unwrap();
    assert_eq!(logits.dims(), [1, ids.len(), 49152]);
    assert_eq!(cache.len(), ids.len());
    let last = logits
        .narrow(1, ids.len() - 1, 1)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let top = &g["last_logits_top20"];
    let mut max_err = 0.0f64;
    for (i, want) in u32s(&top["indices"]).iter().zip(f64s(&top["values"])) {
        max_err = max_err.max((last[*i as usize] - want).abs());
    }
    let stride = g["last_logits_stride"].as_u64().unwrap() as usize;
    for (j, want) in f64s(&g["last_logits_strided"]).into_iter().enumerate() {
        max_err = max_err.max((last[j * stride] - want).abs());
    }
    eprintln!("f32 last-position logits, max abs error vs transformers: {max_err:.3e}");
    assert!(max_err <= F32_ABS, "max abs error {max_err}");
    // The top 20 come in transformers' order.
    let mut order: Vec<usize> = (0..last.len()).collect();
    order.sort_by(|&a, &b| last[b].total_cmp(&last[a]));
    let want: Vec<usize> = u32s(&top["indices"]).iter().map(|&i| i as usize).collect();
    assert_eq!(&order[..20], &want[..]);
}

#[test]
fn forward_last_is_the_last_row_of_forward_for_less_work() {
    let Some(model) = model() else {
        return;
    };
    let ids = u32s(&golden()["input_ids"]);
    let x = prompt_tensor(&ids);
    let (full, all) =
        tally_core::try_measure(|| model.forward(&x, &mut model.new_cache())).unwrap();
    let (last, one) =
        tally_core::try_measure(|| model.forward_last(&x, &mut model.new_cache())).unwrap();
    assert_eq!(last.dims(), [1, 49152]);
    let want = full
        .narrow(1, ids.len() - 1, 1)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let got = last.to_f64_vec().unwrap();
    let err = want
        .iter()
        .zip(&got)
        .fold(0f64, |e, (a, b)| e.max((a - b).abs()));
    assert!(err <= 1e-4, "max abs difference {err}");
    // The output projection runs on 1 row instead of s: (s − 1)·V·H fewer MACs.
    let (v, h) = (49152u64, 576u64);
    let saved = (ids.len() as u64 - 1) * v * h;
    let matmul_fma = |l: &tally_core::Ledger| -> u64 {
        l.records()
            .iter()
            .filter(|r| r.op == OpId::Matmul)
            .map(|r| r.work.fma)
            .sum()
    };
    assert_eq!(matmul_fma(&all) - matmul_fma(&one), saved);
}

#[test]
fn greedy_20_tokens_match_transformers() {
    let Some(model) = model() else {
        return;
    };
    let g = golden();
    let mut streamed = String::new();
    let ids = model
        .generate(g["prompt"].as_str().unwrap(), 20, Sampling::Greedy, |t| {
            streamed.push_str(t)
        })
        .unwrap();
    eprintln!("generated: {streamed:?}");
    assert_eq!(ids, u32s(&g["generated_ids"]));
    assert_eq!(streamed, g["generated_text"].as_str().unwrap());
}

#[test]
fn prefill_and_decode_count_the_formula() {
    let Some(model) = model() else {
        return;
    };
    let c = model.config().clone();
    let g = golden();
    let ids = u32s(&g["input_ids"]);
    let s = ids.len();
    let mut cache = model.new_cache();
    let (logits, ledger) = measure(|| model.forward(&prompt_tensor(&ids), &mut cache));
    logits.unwrap();
    for r in ledger.disagreements() {
        assert_eq!(r.op, OpId::Attention, "{} in {} disagrees", r.op, r.scope);
    }
    let dense = c.dense_fpo(1, s, 0);
    let skipped = c.causal_skipped_pairs(1, s);
    eprintln!(
        "prefill 1x{s}: dense {dense} (FlopCounterMode {}), executed {}, skipped pairs {skipped}",
        g["flop_counter"]["matmul_fpo"],
        ledger.contraction_fpo()
    );
    assert_eq!(ledger.contraction_fpo_analytic(), dense);
    assert_eq!(dense, g["flop_counter"]["matmul_fpo"].as_u64().unwrap());
    assert_eq!(ledger.contraction_fpo(), dense - skipped * 4 * 64);
    assert_eq!(ledger.contraction_fpo(), model.executed_fpo(1, s, 0));
    let scopes: Vec<String> = ledger.by_scope(3).into_iter().map(|(s, _)| s).collect();
    let mut want = vec!["embed".to_string()];
    for i in 0..30 {
        want.push(format!("layers.{i}.attn"));
        want.push(format!("layers.{i}.mlp"));
    }
    want.push("lm_head".into());
    assert_eq!(scopes, want);
    // Decode steps: one token over all cached keys, executed = dense = the decode formula.
    for (step, &token) in u32s(&g["generated_ids"])[..3].iter().enumerate() {
        let past = s + step;
        let (out, ledger) = measure(|| model.forward(&prompt_tensor(&[token]), &mut cache));
        assert_eq!(out.unwrap().dims(), [1, 1, 49152]);
        let want = 2 * c.matmul_params() + 4 * 30 * 9 * (past as u64 + 1) * 64;
        eprintln!("decode step after {past}: {} FPO", ledger.contraction_fpo());
        assert_eq!(ledger.contraction_fpo(), want);
        assert_eq!(ledger.contraction_fpo_analytic(), want);
        assert_eq!(want, c.causal_fpo(1, 1, past));
        assert!(ledger.disagreements().next().is_none());
    }
    assert_eq!(cache.len(), s + 3);
}

#[test]
fn interleaved_rope_on_gguf_rows_equals_half_rope_on_hf_rows() {
    // llama.cpp stores head row 2j + t where Hugging Face has row t·d/2 + j. Rotating the
    // stored rows in interleaved pairs and HF's in half-split pairs gives the same vectors
    // up to that permutation, so every q·k (and the attention output) is the same.
    use tally_core::backend::RopeStyle;
    let (s, d) = (3usize, 8usize);
    let hf: Vec<f32> = (0..s * d)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
        .collect();
    let perm = |row: usize| {
        let (j, t) = (row / 2, row % 2);
        t * d / 2 + j
    };
    let gguf: Vec<f32> = (0..s * d).map(|i| hf[(i / d) * d + perm(i % d)]).collect();
    let angles: Vec<f32> = (0..s * d / 2)
        .map(|i| (i / (d / 2)) as f32 * 1e5f32.powf(-2.0 * (i % (d / 2)) as f32 / d as f32))
        .collect();
    let table = |f: fn(f32) -> f32| {
        let v = angles.iter().map(|&a| f(a)).collect::<Vec<_>>();
        Tensor::from_vec(v, [s, d / 2], Device::Cpu).unwrap()
    };
    let (cos, sin) = (table(f32::cos), table(f32::sin));
    let rot = |x: &[f32], style| {
        Tensor::from_vec(x.to_vec(), [s, d], Device::Cpu)
            .unwrap()
            .rope(&cos, &sin, style)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    };
    let a = rot(&hf, RopeStyle::Half);
    let b = rot(&gguf, RopeStyle::Interleaved);
    for i in 0..s * d {
        assert_eq!(b[i], a[(i / d) * d + perm(i % d)], "element {i}");
    }
}

#[test]
fn bf16_predicts_the_same_next_token() {
    if model().is_none() {
        return;
    }
    let dir = cache_dir().join(SMOLLM2_DIR);
    let model = Llama::load(&dir, DType::BF16).expect("SmolLM2 loads as bf16");
    let g = golden();
    let ids = model
        .generate(g["prompt"].as_str().unwrap(), 1, Sampling::Greedy, |_| {})
        .unwrap();
    assert_eq!(ids[0], u32s(&g["generated_ids"])[0]); // " Paris"
}

/// Two prompts of different lengths, right-padded into one batch.
const BATCH: [&str; 2] = ["The capital of France is", "Hello"];

#[test]
fn batch_generates_what_each_prompt_generates_alone() {
    let Some(model) = model() else {
        return;
    };
    let g = golden();
    let mut streamed = vec![String::new(); BATCH.len()];
    let batch = model
        .generate_batch(&BATCH, 20, Sampling::Greedy, |r, t| streamed[r].push_str(t))
        .unwrap();
    assert_eq!(batch.len(), BATCH.len());
    for (r, prompt) in BATCH.iter().enumerate() {
        let alone = model
            .generate(prompt, 20, Sampling::Greedy, |_| {})
            .unwrap();
        eprintln!("batch row {r} ({prompt:?}): {:?}", streamed[r]);
        assert_eq!(batch[r], alone, "row {r}: {prompt:?}");
        assert_eq!(streamed[r], model.tokenizer().decode(&batch[r]).unwrap());
    }
    assert_eq!(batch[0], u32s(&g["generated_ids"]));
}

/// (query, key) pairs one head of one layer computes for right-padded rows of `lens`
/// tokens in a prefill of s = max(lens): query i of a row of n sees keys 0..=min(i, n − 1)
/// (causal, padded keys hidden; padded queries still see the row's n real keys).
fn visible_prefill_pairs(lens: &[usize]) -> u64 {
    let s = *lens.iter().max().unwrap();
    lens.iter()
        .map(|&n| (0..s).map(|i| (i + 1).min(n) as u64).sum::<u64>())
        .sum()
}

#[test]
fn padded_prefill_counts_only_visible_pairs() {
    let Some(model) = model() else {
        return;
    };
    let c = model.config().clone();
    let (l, h, d) = (c.num_layers as u64, c.num_heads as u64, c.head_dim as u64);
    let encoded: Vec<Vec<u32>> = BATCH
        .iter()
        .map(|p| model.tokenizer().encode(p).unwrap())
        .collect();
    let lens: Vec<usize> = encoded.iter().map(Vec::len).collect();
    let (b, s) = (lens.len(), *lens.iter().max().unwrap());
    assert!(lens.iter().any(|&n| n < s), "the prompts differ in length");
    let ids: Vec<u32> = encoded
        .iter()
        .flat_map(|row| (0..s).map(move |j| row.get(j).copied().unwrap_or(0)))
        .collect();
    let mask: Vec<u32> = lens
        .iter()
        .flat_map(|&n| (0..s).map(move |j| u32::from(j < n)))
        .collect();
    let ids = Tensor::from_vec(ids, [b, s], Device::Cpu).unwrap();
    let mask = Tensor::from_vec(mask, [b, s], Device::Cpu).unwrap();
    let mut cache = model.new_cache();
    let (logits, ledger) = measure(|| model.forward_masked(&ids, &mut cache, Some(&mask), None));
    assert_eq!(logits.unwrap().dims(), [b, s, 49152]);

    // Per layer: h heads over the visible pairs of every row; dense: b·h·s·s.
    let visible = h * visible_prefill_pairs(&lens);
    let dense = h * (b * s * s) as u64;
    let skipped = dense - visible;
    let geometry = AttentionGeometry {
        batch: b,
        heads: c.num_heads,
        kv_heads: c.num_kv_heads,
        q_len: s,
        kv_len: s,
        head_dim: c.head_dim,
    };
    let attn: Vec<_> = ledger
        .records()
        .iter()
        .filter(|r| r.op == OpId::Attention)
        .collect();
    assert_eq!(attn.len(), c.num_layers);
    for r in &attn {
        assert_eq!(
            r.work,
            attention_over(&geometry, visible, 0, b * s, DType::F32)
        );
        // Dense exceeds executed by the skipped pairs × (2·d FMAs, 2 muls, 3 adds, 1 exp).
        let per_pair = Work {
            fma: 2 * d,
            mul: 2,
            add: 3,
            special: 1,
            ..Work::ZERO
        };
        assert_eq!(r.work + per_pair.times(skipped), r.analytic);
    }
    let fma: u64 = attn.iter().map(|r| r.work.fma).sum();
    assert_eq!(fma, 2 * d * l * visible);
    // Everything else is dense: the whole pass is the dense formula less 4·d per skip.
    eprintln!(
        "padded prefill {b}x{s} (lens {lens:?}): {visible} visible of {dense} pairs a layer, \
         executed {} FPO, dense {}",
        ledger.contraction_fpo(),
        ledger.contraction_fpo_analytic()
    );
    assert_eq!(ledger.contraction_fpo_analytic(), c.dense_fpo(b, s, 0));
    assert_eq!(
        ledger.contraction_fpo(),
        c.dense_fpo(b, s, 0) - 4 * d * l * skipped
    );

    // One decode step, row r at position n_r: it sees its n_r real keys and its new one.
    let step = Tensor::from_vec(vec![1u32; b], [b, 1], Device::Cpu).unwrap();
    let mask: Vec<u32> = lens
        .iter()
        .flat_map(|&n| (0..=s).map(move |j| u32::from(j < n || j == s)))
        .collect();
    let mask = Tensor::from_vec(mask, [b, s + 1], Device::Cpu).unwrap();
    let (out, ledger) =
        measure(|| model.forward_masked(&step, &mut cache, Some(&mask), Some(&lens)));
    assert_eq!(out.unwrap().dims(), [b, 1, 49152]);
    let seen: u64 = lens.iter().map(|&n| n as u64 + 1).sum();
    let fma: u64 = ledger
        .records()
        .iter()
        .filter(|r| r.op == OpId::Attention)
        .map(|r| r.work.fma)
        .sum();
    assert_eq!(fma, 2 * d * l * h * seen);
    assert_eq!(cache.len(), s + 1);
}

#[test]
fn seeded_weights_have_the_checkpoints_shapes_and_work() {
    let Some(real) = model() else { return };
    let seeded = Llama::seeded(real.config().clone(), DType::F32, Device::Cpu, 5).unwrap();
    assert_eq!(seeded.num_params(), real.num_params());
    let ids = prompt_tensor(&[1, 2, 3, 4, 5, 6, 7]);
    let run = |m: &Llama| {
        let mut cache = m.new_cache();
        let (logits, ledger) = measure(|| m.forward(&ids, &mut cache));
        (logits.unwrap(), ledger.total())
    };
    let ((lr, wr), (ls, ws)) = (run(real), run(&seeded));
    assert_eq!(lr.dims(), ls.dims());
    assert_eq!(
        (ws.calls, ws.work),
        (wr.calls, wr.work),
        "same ops, same counted work"
    );
    assert_eq!(ws.analytic, wr.analytic);
    // Different weights: the logits differ (the test could not pass on the real model twice).
    assert_ne!(lr.to_vec::<f32>().unwrap(), ls.to_vec::<f32>().unwrap());
    assert!(ls.to_vec::<f32>().unwrap().iter().all(|v| v.is_finite()));
}
