//! Reading a llama.cpp GGUF file: its `llama.*` sizes, its tokenizer vocabulary, and its
//! tensors dequantised to f32 (through candle-core's reader) into a [`WeightStore`].
//!
//! llama.cpp's converter stores the rows of `attn_q` and `attn_k` permuted, within each
//! head, from Hugging Face's half-split RoPE order to the interleaved one (row 2j + t of a
//! head is HF's row t·d/2 + j). The rows are kept as stored and RoPE is applied in the
//! interleaved style, which rotates the same pairs; q·k is unchanged by permuting q and k
//! alike, so the attention output equals transformers' on the same weights.

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use tally_core::{Device, Error, Result, Shape};
use tally_nn::WeightStore;
use tally_tensor::Tensor;

use super::LlamaConfig;

/// What a GGUF file holds, read once.
pub(crate) struct GgufModel {
    /// Sizes from the `llama.*` keys.
    pub config: LlamaConfig,
    /// Every tensor, f32, under its GGUF name (`token_embd.weight`, `blk.{i}.attn_q.weight`, …).
    pub store: WeightStore,
    /// `tokenizer.ggml.tokens`, by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`, "left right" each.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type` (3 = control token), by id.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
}

/// An `Io` error for a missing checkpoint that names the fetch command.
pub(crate) fn missing(path: PathBuf) -> Error {
    Error::Io {
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not found; run `models/fetch smollm2` to download SmolLM2-135M-Instruct into the cache",
        ),
    }
}

impl GgufModel {
    /// Reads `path`; a missing file is an `Io` error naming `models/fetch smollm2`.
    pub fn read(path: &Path) -> Result<GgufModel> {
        if !path.is_file() {
            return Err(missing(path.to_path_buf()));
        }
        let bad = |tensor: Option<&str>, reason: String| Error::BadCheckpoint {
            path: path.to_path_buf(),
            tensor: tensor.map(str::to_string),
            reason,
        };
        let mut file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let content = Content::read(&mut file).map_err(|e| bad(None, e.to_string()))?;
        let meta = |key: &str| {
            content
                .metadata
                .get(key)
                .ok_or_else(|| bad(None, format!("no metadata key `{key}`")))
        };
        let int = |key: &str| -> Result<usize> {
            let v = meta(key)?;
            v.to_u32()
                .map(|x| x as usize)
                .or_else(|_| v.to_u64().map(|x| x as usize))
                .map_err(|e| bad(None, format!("`{key}`: {e}")))
        };
        // GGUF stores these as f32; the shortest decimal that round-trips (1e-5, not
        // 9.99999974e-6) is the value the model was configured with.
        let float = |key: &str| -> Result<f64> {
            let x = meta(key)?
                .to_f32()
                .map_err(|e| bad(None, format!("`{key}`: {e}")))?;
            x.to_string()
                .parse()
                .map_err(|e| bad(None, format!("`{key}`: {e}")))
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            let items = meta(key)?
                .to_vec()
                .map_err(|e| bad(None, format!("`{key}`: {e}")))?;
            items
                .iter()
                .map(|v| v.to_string().cloned())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(None, format!("`{key}`: {e}")))
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let token_types = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(items)) => items.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
            _ => vec![1; tokens.len()],
        };
        let eos = int("tokenizer.ggml.eos_token_id").ok().map(|x| x as u32);
        let (heads, hidden) = (
            int("llama.attention.head_count")?,
            int("llama.embedding_length")?,
        );
        let config = LlamaConfig {
            vocab_size: tokens.len(),
            hidden_size: hidden,
            intermediate_size: int("llama.feed_forward_length")?,
            num_layers: int("llama.block_count")?,
            num_heads: heads,
            num_kv_heads: int("llama.attention.head_count_kv")?,
            head_dim: hidden / heads.max(1),
            rms_norm_eps: float("llama.attention.layer_norm_rms_epsilon")?,
            rope_theta: float("llama.rope.freq_base")?,
            max_position: int("llama.context_length")?,
        };
        let mut tensors = Vec::with_capacity(content.tensor_infos.len());
        for name in content.tensor_infos.keys() {
            let q = content
                .tensor(&mut file, name, &candle_core::Device::Cpu)
                .map_err(|e| bad(Some(name), e.to_string()))?;
            let t = q
                .dequantize(&candle_core::Device::Cpu)
                .and_then(|t| t.to_dtype(candle_core::DType::F32))
                .map_err(|e| bad(Some(name), e.to_string()))?;
            let dims = t.dims().to_vec();
            let data = t
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| bad(Some(name), e.to_string()))?;
            tensors.push((
                name.clone(),
                Tensor::from_vec(data, Shape::new(dims), Device::Cpu)?,
            ));
        }
        Ok(GgufModel {
            config,
            store: WeightStore::from_tensors(tensors)?,
            tokens,
            merges,
            token_types,
            eos,
        })
    }
}
