//! [`Llama`]: a Llama-architecture decoder (SmolLM2-135M-Instruct) loaded from a GGUF file,
//! its forward pass over a [`KvCache`], and greedy generation with streamed text.

use std::path::Path;

use tally_core::{scope, DType, Device, Error, Result};
use tally_nn::{Embedding, Linear, RmsNorm, WeightView};
use tally_tensor::Tensor;

use super::gguf::GgufModel;
use super::{DecoderLayer, KvCache, LlamaConfig, LlamaTokenizer, GGUF_FILE};

/// How [`Llama::generate`] picks each next token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// The highest logit (the first one on ties), as transformers' `do_sample=False`.
    Greedy,
}

/// A Llama decoder with its tokenizer: token embedding, L [`DecoderLayer`]s, a final
/// RMSNorm and an output head tied to the embedding table.
#[derive(Clone, Debug)]
pub struct Llama {
    config: LlamaConfig,
    tokenizer: LlamaTokenizer,
    embed: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    /// RoPE tables (max_position, d/2): cos and sin of t·θ^(−2f/d).
    cos: Tensor,
    sin: Tensor,
    dtype: DType,
}

impl Llama {
    /// Loads `dir/model.gguf` (what `models/fetch smollm2` writes), its weights dequantised
    /// and converted to `dtype` (f32, bf16 or f16). A missing file is an `Io` error naming
    /// `models/fetch smollm2`.
    pub fn load(dir: &Path, dtype: DType) -> Result<Llama> {
        Llama::from_gguf(&dir.join(GGUF_FILE), dtype)
    }

    /// Loads the GGUF file `path`, as [`Llama::load`].
    pub fn from_gguf(path: &Path, dtype: DType) -> Result<Llama> {
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType {
                op: "Llama::load",
                dtype,
            });
        }
        let g = GgufModel::read(path)?;
        let config = g.config;
        let tokenizer = LlamaTokenizer::from_vocab(&g.tokens, &g.merges, &g.token_types, g.eos)?;
        let vb = WeightView::new(g.store).with_dtype(dtype);
        let (v, h) = (config.vocab_size, config.hidden_size);
        let embed = Embedding::load(&vb.pp("token_embd"), v, h)?;
        let layers = (0..config.num_layers)
            .map(|i| DecoderLayer::load(&vb.pp(format!("blk.{i}")), &config))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(&vb.pp("output_norm"), h, config.rms_norm_eps)?;
        // Tied embeddings: the file has no `output.weight`, the head reuses the table.
        let lm_head = match vb.contains("output.weight") {
            true => Linear::load(&vb.pp("output"), h, v, false)?,
            false => Linear::new(embed.table().clone(), None)?,
        };
        let (cos, sin) = rope_tables(&config, dtype)?;
        Ok(Llama {
            config,
            tokenizer,
            embed,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            dtype,
        })
    }

    /// The decoder's sizes, as read from the file.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &LlamaTokenizer {
        &self.tokenizer
    }

    /// The dtype of the weights and activations.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// An empty cache sized for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.num_layers)
    }

    /// Logits (b, s, V) for `ids` (b, s) u32 at positions past..past + s, where past is
    /// `cache.len()`; the new keys and values are appended to `cache`. Runs under the
    /// scopes `embed`, `layers.{i}.attn` / `layers.{i}.mlp` and `lm_head` (final norm and
    /// output projection).
    pub fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        const OP: &str = "Llama::forward";
        if ids.rank() != 2 || ids.dtype() != DType::U32 {
            return Err(Error::shape(OP, ids.shape(), "ids must be (b, s) u32"));
        }
        let (s, past) = (ids.dims()[1], cache.len());
        if s == 0 || past + s > self.config.max_position {
            return Err(Error::shape(
                OP,
                ids.shape(),
                format!(
                    "{past} cached + s positions must be 1..={}",
                    self.config.max_position
                ),
            ));
        }
        let cos = self.cos.narrow(0, past, s)?;
        let sin = self.sin.narrow(0, past, s)?;
        let mut x = scope("embed", || self.embed.forward(ids))?;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, (&cos, &sin), cache, i)?;
        }
        scope("lm_head", || self.lm_head.forward(&self.norm.forward(&x)?))
    }

    /// Generates up to `max_tokens` tokens after `prompt` (encoded without special tokens),
    /// prefill then one cached decode step per token, stopping early at end-of-sequence.
    /// `on_token` receives each new piece of text as soon as it decodes to whole
    /// characters. Returns the generated token ids.
    pub fn generate(
        &self,
        prompt: &str,
        max_tokens: usize,
        sampling: Sampling,
        mut on_token: impl FnMut(&str),
    ) -> Result<Vec<u32>> {
        let prompt_ids = self.tokenizer.encode(prompt)?;
        if prompt_ids.is_empty() {
            return Err(Error::invalid(
                "Llama::generate",
                "the prompt has no tokens",
            ));
        }
        let mut cache = self.new_cache();
        let mut input = Tensor::from_vec(prompt_ids.clone(), [1, prompt_ids.len()], Device::Cpu)?;
        let (mut out, mut shown) = (Vec::new(), 0usize);
        while out.len() < max_tokens {
            let logits = self.forward(&input, &mut cache)?;
            let next = pick(&logits, sampling)?;
            out.push(next);
            let text = self.tokenizer.decode(&out)?;
            if !text.ends_with('\u{FFFD}') {
                if let Some(piece) = text.get(shown..) {
                    on_token(piece);
                    shown = text.len();
                }
            }
            if Some(next) == self.tokenizer.eos() {
                break;
            }
            input = Tensor::from_vec(vec![next], [1, 1], Device::Cpu)?;
        }
        Ok(out)
    }

    /// Parameters: the embedding table (tied with the head, counted once), L layers and
    /// the final norm; 134,515,008 for SmolLM2-135M.
    pub fn num_params(&self) -> usize {
        let c = &self.config;
        c.vocab_size * c.hidden_size + c.num_layers * DecoderLayer::num_params(c) + c.hidden_size
    }

    /// Dense matrix-product FPO of a forward pass of `s` tokens after `past` cached ones,
    /// batch `b`: see [`LlamaConfig::dense_fpo`].
    pub fn analytic_fpo(&self, b: usize, s: usize, past: usize) -> u64 {
        self.config.dense_fpo(b, s, past)
    }

    /// The matrix-product FPO that pass executes with causal skipping: see
    /// [`LlamaConfig::causal_fpo`].
    pub fn executed_fpo(&self, b: usize, s: usize, past: usize) -> u64 {
        self.config.causal_fpo(b, s, past)
    }
}

/// The next token from logits (b, s, V): the last position of the first sequence.
fn pick(logits: &Tensor, sampling: Sampling) -> Result<u32> {
    let s = logits.dims()[1];
    match sampling {
        Sampling::Greedy => {
            let last = logits.narrow(0, 0, 1)?.narrow(1, s - 1, 1)?;
            let id = last.argmax(2, false)?.to_vec::<u32>()?;
            Ok(id[0])
        }
    }
}

/// cos and sin of t·θ^(−2f/d) for t < max_position, f < d/2, as (max_position, d/2).
fn rope_tables(c: &LlamaConfig, dtype: DType) -> Result<(Tensor, Tensor)> {
    let half = c.head_dim / 2;
    let inv: Vec<f64> = (0..half)
        .map(|f| c.rope_theta.powf(-((2 * f) as f64) / c.head_dim as f64))
        .collect();
    let angles = (0..c.max_position).flat_map(|t| inv.iter().map(move |w| t as f64 * w));
    let (cos, sin): (Vec<f32>, Vec<f32>) = angles.map(|a| (a.cos() as f32, a.sin() as f32)).unzip();
    let table =
        |v: Vec<f32>| Tensor::from_vec(v, [c.max_position, half], Device::Cpu)?.to_dtype(dtype);
    Ok((table(cos)?, table(sin)?))
}
