//! candle-transformers 0.11 on the same checkpoints Tally loads: MiniLM (BERT) from its
//! safetensors, SmolLM2 (Llama) from the GGUF Tally reads, dequantised to f32. Shared by
//! the `models` bench (which races candle in-process) and the `candle_bench` example
//! (which `benches/pytorch/compare.sh` runs beside `tally bench` and PyTorch).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, llama};

/// Token ids for a (b, s) input: `[CLS]`, then ordinary word-piece ids, then `[SEP]`.
/// Content does not change the work; the same ids go to both engines.
pub fn bert_ids(b: usize, s: usize) -> Vec<u32> {
    (0..b * s)
        .map(|i| match i % s {
            0 => 101,
            j if j == s - 1 => 102,
            j => 1000 + ((j * 7919 + i / s * 31) % 28000) as u32,
        })
        .collect()
}

/// A prompt of `s` ordinary SmolLM2 token ids (content does not change the work).
pub fn prompt_ids(s: usize) -> Vec<u32> {
    (0..s as u32).map(|i| 100 + (i * 7919) % 40000).collect()
}

/// candle's BERT over MiniLM's checkpoint in `dir` (`config.json`, `model.safetensors`)
/// with the most positions it embeds, or what went wrong, naming the file.
pub fn minilm(dir: &Path) -> Result<(bert::BertModel, usize), String> {
    let config = dir.join("config.json");
    let at = |path: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let text = std::fs::read_to_string(&config).map_err(|e| at(&config, &e))?;
    let cfg: bert::Config = serde_json::from_str(&text).map_err(|e| at(&config, &e))?;
    let weights = dir.join("model.safetensors");
    // SAFETY: the checkpoint file is not modified while mapped (it lives in the cache).
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
        .map_err(|e| at(&weights, &e))?;
    let model = bert::BertModel::load(vb, &cfg).map_err(|e| at(&weights, &e))?;
    Ok((model, cfg.max_position_embeddings))
}

/// MiniLM's sentence embeddings in candle for the (b, s) `ids`: the encoder, then Tally's
/// pooling (mean over tokens, then unit length).
pub fn minilm_embed(model: &bert::BertModel, ids: &Tensor) -> candle_core::Result<Tensor> {
    let s = ids.dim(1)?;
    let types = ids.zeros_like()?;
    let mask = ids.ones_like()?;
    let h = model.forward(ids, &types, Some(&mask))?;
    let mean = (h.sum(1)? / s as f64)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
    mean.broadcast_div(&norm)
}

/// GGUF's q and k rows (interleaved RoPE pairs within each head) back in Hugging Face's
/// half-split order, which candle's Llama rotates: row 2j + t of a head is HF's t·d/2 + j.
fn unpermute(w: Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let d = out / heads;
    w.reshape((heads, d / 2, 2, inp))?
        .transpose(1, 2)?
        .reshape((out, inp))?
        .contiguous()
}

/// candle's Llama configuration for Tally's (`tied`: the output projection is the token
/// embedding).
pub fn llama_config(c: &tally::models::llama::LlamaConfig, tied: bool) -> llama::Config {
    llama::Config {
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        vocab_size: c.vocab_size,
        num_hidden_layers: c.num_layers,
        num_attention_heads: c.num_heads,
        num_key_value_heads: c.num_kv_heads,
        use_flash_attn: false,
        rms_norm_eps: c.rms_norm_eps,
        rope_theta: c.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: c.max_position,
        tie_word_embeddings: tied,
    }
}

/// candle's Llama over the GGUF checkpoint at `path`, dequantised to f32 under Hugging
/// Face names (`c` is Tally's configuration of the same checkpoint), or what went wrong,
/// naming the file.
pub fn smollm2(path: &Path, c: &tally::models::llama::LlamaConfig) -> Result<llama::Llama, String> {
    use candle_core::quantized::gguf_file::Content;
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| at(&e))?;
    let content = Content::read(&mut file).map_err(|e| at(&e))?;
    let mut ts = HashMap::new();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    for name in names {
        let q = content
            .tensor(&mut file, &name, &Device::Cpu)
            .map_err(|e| at(&e))?;
        let t = q.dequantize(&Device::Cpu).map_err(|e| at(&e))?;
        let hf = if let Some(rest) = name.strip_prefix("blk.") {
            let (i, rest) = rest
                .split_once('.')
                .ok_or_else(|| at(&format!("unexpected tensor {name}")))?;
            let (t, part) = match rest {
                "attn_q.weight" => (
                    unpermute(t, c.num_heads).map_err(|e| at(&e))?,
                    "self_attn.q_proj.weight",
                ),
                "attn_k.weight" => (
                    unpermute(t, c.num_kv_heads).map_err(|e| at(&e))?,
                    "self_attn.k_proj.weight",
                ),
                "attn_v.weight" => (t, "self_attn.v_proj.weight"),
                "attn_output.weight" => (t, "self_attn.o_proj.weight"),
                "attn_norm.weight" => (t, "input_layernorm.weight"),
                "ffn_norm.weight" => (t, "post_attention_layernorm.weight"),
                "ffn_gate.weight" => (t, "mlp.gate_proj.weight"),
                "ffn_up.weight" => (t, "mlp.up_proj.weight"),
                "ffn_down.weight" => (t, "mlp.down_proj.weight"),
                other => return Err(at(&format!("unexpected tensor blk.{i}.{other}"))),
            };
            ts.insert(format!("model.layers.{i}.{part}"), t);
            continue;
        } else {
            match name.as_str() {
                "token_embd.weight" => "model.embed_tokens.weight",
                "output_norm.weight" => "model.norm.weight",
                "output.weight" => "lm_head.weight",
                other => return Err(at(&format!("unexpected tensor {other}"))),
            }
        };
        ts.insert(hf.to_string(), t);
    }
    let cfg = llama_config(c, !ts.contains_key("lm_head.weight"));
    let vb = VarBuilder::from_tensors(ts, DType::F32, &Device::Cpu);
    llama::Llama::load(vb, &cfg).map_err(|e| at(&e))
}
