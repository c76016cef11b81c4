//! [`Llama`]: a Llama-architecture decoder (SmolLM2-135M-Instruct) loaded from a GGUF file,
//! its forward pass over a [`KvCache`], and greedy generation with streamed text.

use std::path::Path;

use tally_core::{scope, DType, Device, Error, Result};
use tally_nn::{Embedding, Linear, RmsNorm, WeightStore, WeightView};
use tally_tensor::Tensor;

use super::gguf::GgufModel;
use super::{DecoderLayer, KvCache, LlamaConfig, LlamaTokenizer, RopeRows, GGUF_FILE};

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
        Llama::from_gguf_on(path, dtype, Device::Cpu)
    }

    /// [`Llama::from_gguf`] with the weights placed on `device` (a GPU: `Device::Cuda(n)`).
    pub fn from_gguf_on(path: &Path, dtype: DType, device: Device) -> Result<Llama> {
        check_float(dtype)?;
        let g = GgufModel::read(path)?;
        let tokenizer = LlamaTokenizer::from_vocab(&g.tokens, &g.merges, &g.token_types, g.eos)?;
        Llama::build(g.config, tokenizer, g.store.on_device(device), dtype)
    }

    /// A decoder of `config`'s shapes with seeded random weights ([`WeightStore::seeded`])
    /// on `device`, the head tied to the embedding table as SmolLM2's is. Its vocabulary is
    /// a placeholder (`<0>`, `<1>`, …): it runs token ids, not text. The work and speed are
    /// the real model's; the logits mean nothing.
    pub fn seeded(config: LlamaConfig, dtype: DType, device: Device, seed: u64) -> Result<Llama> {
        check_float(dtype)?;
        let tokens: Vec<String> = (0..config.vocab_size).map(|i| format!("<{i}>")).collect();
        let tokenizer = LlamaTokenizer::from_vocab(&tokens, &[], &[], None)?;
        let store = WeightStore::seeded(seed, ["output.weight".to_string()]).on_device(device);
        Llama::build(config, tokenizer, store, dtype)
    }

    fn build(
        config: LlamaConfig,
        tokenizer: LlamaTokenizer,
        store: WeightStore,
        dtype: DType,
    ) -> Result<Llama> {
        let device = store.device();
        let vb = WeightView::new(store).with_dtype(dtype);
        let (v, h) = (config.vocab_size, config.hidden_size);
        let embed = Embedding::load(&vb.pp("token_embd"), v, h)?;
        let layers = (0..config.num_layers)
            .map(|i| DecoderLayer::load(&vb.pp(format!("blk.{i}")), &config))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(&vb.pp("output_norm"), h, config.rms_norm_eps)?;
        // Tied embeddings: the file has no `output.weight`, the head reuses the table.
        let lm_head = match vb.contains("output.weight") {
            true => Linear::load(&vb.pp("output"), h, v, false)?,
            false => Linear::shared(embed.table().clone(), None)?,
        };
        let (cos, sin) = rope_tables(&config, dtype, device)?;
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
    /// scopes `embed`, `layers.{i}.attn` / `layers.{i}.mlp` and `lm_head` (the last layer's
    /// residual add with the final norm, one call, then the output projection).
    /// [`Llama::forward_masked`] with no mask and no positions.
    pub fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        self.forward_masked(ids, cache, None, None)
    }

    /// Logits (b, s, V) for `ids` (b, s) u32, as [`Llama::forward`], with
    /// - `mask` (b, past + s) u32: non-zero where a key slot (cached or new) is a real token
    ///   of that sequence; attention skips the others (and counts only what ran). `None`:
    ///   every slot is visible.
    /// - `positions` (b entries): the RoPE position of row r's first new token (its tokens
    ///   take `positions[r]..positions[r] + s`). `None`: every row starts at `cache.len()`.
    ///   Rows at different positions are roped one by one ([`RopeRows::per_row`]).
    ///
    /// The pass runs on the pool's workers ([`tally_tensor::on_pool`]), as does
    /// [`Llama::forward_last`]'s.
    pub fn forward_masked(
        &self,
        ids: &Tensor,
        cache: &mut KvCache,
        mask: Option<&Tensor>,
        positions: Option<&[usize]>,
    ) -> Result<Tensor> {
        tally_tensor::on_pool(|| self.run(ids, cache, mask, positions, false))
    }

    /// Logits (b, V) of the last position only, for `ids` (b, s) u32 after the cached
    /// tokens: [`Llama::forward`] with the final norm and the output projection applied to
    /// the last row alone, as generation needs (the projection is V·H MACs per row).
    pub fn forward_last(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        tally_tensor::on_pool(|| self.run(ids, cache, None, None, true))
    }

    /// The decoder stack on this thread; `last_only` projects only each sequence's last row
    /// to logits. Its callers run it on the pool's workers ([`tally_tensor::on_pool`]).
    fn run(
        &self,
        ids: &Tensor,
        cache: &mut KvCache,
        mask: Option<&Tensor>,
        positions: Option<&[usize]>,
        last_only: bool,
    ) -> Result<Tensor> {
        const OP: &str = "Llama::forward";
        if ids.rank() != 2 || ids.dtype() != DType::U32 {
            return Err(Error::shape(OP, ids.shape(), "ids must be (b, s) u32"));
        }
        let (b, s, past) = (ids.dims()[0], ids.dims()[1], cache.len());
        let starts = match positions {
            Some(p) if p.len() != b => {
                return Err(Error::shape(
                    OP,
                    ids.shape(),
                    format!("{} positions for {b} rows", p.len()),
                ))
            }
            Some(p) => p.to_vec(),
            None => vec![past; b],
        };
        let last = starts.iter().max().copied().unwrap_or(past);
        if s == 0 || last + s > self.config.max_position || past + s > self.config.max_position {
            return Err(Error::shape(
                OP,
                ids.shape(),
                format!(
                    "{past} cached (first position {last}) + s positions must be 1..={}",
                    self.config.max_position
                ),
            ));
        }
        let rows =
            |p: usize| Ok::<_, Error>((self.cos.narrow(0, p, s)?, self.sin.narrow(0, p, s)?));
        let rope = match starts.iter().all(|&p| p == starts[0]) {
            true => {
                let (cos, sin) = rows(starts[0])?;
                RopeRows::shared(cos, sin)
            }
            false => RopeRows::per_row(starts.iter().map(|&p| rows(p)).collect::<Result<_>>()?),
        };
        // The residual stream, and the last layer's output not yet added into it (each
        // norm adds it in the same call).
        let mut x = scope("embed", || self.embed.forward(ids))?;
        let mut delta: Option<Tensor> = None;
        for (i, layer) in self.layers.iter().enumerate() {
            (x, delta) = layer
                .forward(&x, delta.as_ref(), &rope, mask, cache, i)
                .map(|(x, d)| (x, Some(d)))?;
        }
        let last_row = |t: Tensor| t.narrow(1, s - 1, 1)?.squeeze(1);
        if last_only {
            x = last_row(x)?;
            delta = delta.map(last_row).transpose()?;
        }
        scope("lm_head", || {
            let xn = match &delta {
                Some(d) => self.norm.forward_residual(&x, d)?.1,
                None => self.norm.forward(&x)?,
            };
            self.lm_head.forward(&xn)
        })
    }

    /// Generates up to `max_tokens` tokens after `prompt` (encoded without special tokens),
    /// prefill then one cached decode step per token, stopping early at end-of-sequence.
    /// `on_token` receives each new piece of text as soon as it decodes to whole
    /// characters. Returns the generated token ids. [`Llama::generate_batch`] of one prompt
    /// (which runs unmasked: nothing is padded).
    pub fn generate(
        &self,
        prompt: &str,
        max_tokens: usize,
        sampling: Sampling,
        mut on_token: impl FnMut(&str),
    ) -> Result<Vec<u32>> {
        let mut out =
            self.generate_batch(&[prompt], max_tokens, sampling, |_, piece| on_token(piece))?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Generates up to `max_tokens` tokens after each prompt, all in one batch.
    ///
    /// The prompts (encoded without special tokens, none empty) are right-padded to the
    /// longest, s, into one (b, s) batch; prefill runs once with the causal mask and a
    /// padding mask (b, s) u32 that hides each row's padded key slots, and row r's first
    /// token comes from the logits at its own last real position n_r − 1. Each decode step
    /// feeds (b, 1) tokens, row r at RoPE position n_r + t, and grows the mask by one
    /// column. The KV cache keeps the padded slots (the mask hides them); projections and
    /// the MLP still run on padded tokens, attention skips their keys. A row that emits
    /// end-of-sequence stops: later steps feed it the pad token (end-of-sequence, or 0)
    /// with mask column 0 until every row is done or has `max_tokens` tokens. While no slot
    /// is hidden (one prompt, or prompts of equal length before any stops) the mask is left
    /// out. `on_token(r, piece)` receives row r's new text as soon as it decodes to whole
    /// characters. Returns each row's generated ids.
    pub fn generate_batch(
        &self,
        prompts: &[&str],
        max_tokens: usize,
        sampling: Sampling,
        mut on_token: impl FnMut(usize, &str),
    ) -> Result<Vec<Vec<u32>>> {
        const OP: &str = "Llama::generate_batch";
        if prompts.is_empty() {
            return Err(Error::invalid(OP, "no prompts"));
        }
        let encoded = prompts
            .iter()
            .map(|p| self.tokenizer.encode(p))
            .collect::<Result<Vec<_>>>()?;
        if let Some(r) = encoded.iter().position(|ids| ids.is_empty()) {
            return Err(Error::invalid(OP, format!("prompt {r} has no tokens")));
        }
        let b = encoded.len();
        let lens: Vec<usize> = encoded.iter().map(Vec::len).collect();
        let s = lens.iter().copied().max().unwrap_or(0);
        let pad = self.tokenizer.eos().unwrap_or(0);
        // Row-major (b, s) ids and per-row mask columns, grown one column per step.
        let mut mask: Vec<Vec<u32>> = lens
            .iter()
            .map(|&n| (0..s).map(|j| u32::from(j < n)).collect())
            .collect();
        let flat: Vec<u32> = encoded
            .iter()
            .flat_map(|ids| ids.iter().copied().chain(std::iter::repeat(pad)).take(s))
            .collect();
        let device = self.cos.device();
        let mut input = Tensor::from_vec(flat, [b, s], device)?;
        let mut cache = self.new_cache();
        cache.reserve(s + max_tokens);
        let mut out = vec![Vec::new(); b];
        let mut shown = vec![0usize; b];
        let mut done = vec![false; b];
        // Where each row's next-token logits sit in the pass's (b, s_new, V) output.
        let mut at: Vec<usize> = lens.iter().map(|n| n - 1).collect();
        let mut positions: Option<Vec<usize>> = None;
        for step in 0..max_tokens {
            let m = match mask.iter().all(|row| row.iter().all(|&v| v != 0)) {
                true => None,
                false => {
                    let cols = mask[0].len();
                    let flat = mask.iter().flatten().copied().collect();
                    Some(Tensor::from_vec(flat, [b, cols], device)?)
                }
            };
            let logits =
                self.forward_masked(&input, &mut cache, m.as_ref(), positions.as_deref())?;
            let mut next = vec![pad; b];
            for r in 0..b {
                if done[r] {
                    continue;
                }
                let id = pick(&logits, r, at[r], sampling)?;
                out[r].push(id);
                next[r] = id;
                let text = self.tokenizer.decode(&out[r])?;
                if !text.ends_with('\u{FFFD}') {
                    if let Some(piece) = text.get(shown[r]..) {
                        on_token(r, piece);
                        shown[r] = text.len();
                    }
                }
                done[r] = Some(id) == self.tokenizer.eos();
            }
            if done.iter().all(|&d| d) || step + 1 == max_tokens {
                break;
            }
            // The token fed at this step is visible to its row only while the row runs.
            for (row, &d) in mask.iter_mut().zip(&done) {
                row.push(u32::from(!d));
            }
            positions = Some(lens.iter().map(|&n| n + step).collect());
            at = vec![0; b];
            input = Tensor::from_vec(next, [b, 1], device)?;
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

/// The next token of batch row `row` from logits (b, s, V) at position `pos`.
fn pick(logits: &Tensor, row: usize, pos: usize, sampling: Sampling) -> Result<u32> {
    match sampling {
        Sampling::Greedy => {
            let last = logits.narrow(0, row, 1)?.narrow(1, pos, 1)?;
            let id = last.argmax(2, false)?.to_vec::<u32>()?;
            Ok(id[0])
        }
    }
}

/// cos and sin of t·θ^(−2f/d) for t < max_position, f < d/2, as (max_position, d/2).
fn check_float(dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::UnsupportedDType {
            op: "Llama::load",
            dtype,
        })
    }
}

fn rope_tables(c: &LlamaConfig, dtype: DType, device: Device) -> Result<(Tensor, Tensor)> {
    let half = c.head_dim / 2;
    let inv: Vec<f64> = (0..half)
        .map(|f| c.rope_theta.powf(-((2 * f) as f64) / c.head_dim as f64))
        .collect();
    let angles = (0..c.max_position).flat_map(|t| inv.iter().map(move |w| t as f64 * w));
    let (cos, sin): (Vec<f32>, Vec<f32>) = angles.map(|a| (a.cos() as f32, a.sin() as f32)).unzip();
    let table = |v: Vec<f32>| Tensor::from_vec(v, [c.max_position, half], device)?.to_dtype(dtype);
    Ok((table(cos)?, table(sin)?))
}
