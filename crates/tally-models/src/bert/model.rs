//! [`Bert`]: a BERT encoder with sentence-transformers' mean pooling and L2 normalisation,
//! the architecture of all-MiniLM-L6-v2, loaded from a Hugging Face / sentence-transformers
//! folder and run on Tally's counted ops.

use std::path::Path;

use tally_core::{scope, DType, Device, Error, Result};
use tally_nn::{Embedding, LayerNorm, WeightStore, WeightView};
use tally_tensor::Tensor;

use super::config::{check_mean_pooling, max_seq_length, model_file};
use super::{Batch, BertConfig, BertTokenizer, EncoderLayer};

/// Sentence-transformers' floor on a row's token count in mean pooling (`clamp(min=1e-9)`).
const COUNT_FLOOR: f32 = 1e-9;
/// `torch.nn.functional.normalize`'s floor on the L2 norm.
const NORM_FLOOR: f32 = 1e-12;

/// A BERT encoder (embeddings, L post-norm layers) with its tokenizer. The checkpoint's
/// `pooler.*` weights (a dense layer over `[CLS]` that sentence-transformers runs and then
/// ignores) are not loaded.
#[derive(Clone, Debug)]
pub struct Bert {
    config: BertConfig,
    tokenizer: BertTokenizer,
    word: Embedding,
    /// Position table, (max_position_embeddings, H); rows 0..s are added as a view.
    position: Tensor,
    /// Token-type row 0, (1, H): every token is of segment A.
    token_type: Tensor,
    embed_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    /// `COUNT_FLOOR` and `NORM_FLOOR` as (1) tensors of the model's dtype.
    floors: (Tensor, Tensor),
    dtype: DType,
}

impl Bert {
    /// Loads the model folder `dir` (`model.safetensors`, `config.json`, `tokenizer.json`,
    /// `sentence_bert_config.json`, `1_Pooling/config.json`), converting the float weights
    /// to `dtype`. A missing file is an `Io` error naming it and `models/fetch minilm`.
    pub fn load(dir: &Path, dtype: DType) -> Result<Bert> {
        Bert::load_on(dir, dtype, Device::Cpu)
    }

    /// [`Bert::load`] with the weights placed on `device` (a GPU: `Device::Cuda(n)`).
    pub fn load_on(dir: &Path, dtype: DType, device: Device) -> Result<Bert> {
        Bert::build(dir, dtype, || {
            Ok(WeightStore::open(model_file(dir, "model.safetensors")?)?.on_device(device))
        })
    }

    /// The model of `dir`'s configuration and tokenizer (`model.safetensors` is not read)
    /// with seeded random weights of its real shapes ([`WeightStore::seeded`]) on
    /// `device`: the same work and speed as the real model, meaningless embeddings.
    pub fn seeded(dir: &Path, dtype: DType, device: Device, seed: u64) -> Result<Bert> {
        Bert::build(dir, dtype, || {
            Ok(WeightStore::seeded(seed, []).on_device(device))
        })
    }

    /// The model of `dir`'s configuration and tokenizer over the weights `store` gives
    /// (asked for after the configuration is checked, so a bad folder names its config).
    fn build(
        dir: &Path,
        dtype: DType,
        store: impl FnOnce() -> Result<WeightStore>,
    ) -> Result<Bert> {
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType {
                op: "Bert::load",
                dtype,
            });
        }
        let config = BertConfig::load(dir)?;
        let max_len = max_seq_length(dir, &config)?;
        check_mean_pooling(dir)?;
        let tokenizer = BertTokenizer::load(dir, max_len)?;
        let store = store()?;
        let device = store.device();
        let vb = WeightView::new(store).with_dtype(dtype);
        let h = config.hidden_size;
        let emb = vb.pp("embeddings");
        let word = Embedding::load(&emb.pp("word_embeddings"), config.vocab_size, h)?;
        let position = emb.get(
            "position_embeddings.weight",
            [config.max_position_embeddings, h],
            dtype,
        )?;
        let token_type = emb
            .get(
                "token_type_embeddings.weight",
                [config.type_vocab_size, h],
                dtype,
            )?
            .narrow(0, 0, 1)?;
        let embed_norm = LayerNorm::load(&emb.pp("LayerNorm"), h, config.layer_norm_eps)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::load(&vb.pp(format!("encoder.layer.{i}")), &config))
            .collect::<Result<Vec<_>>>()?;
        let floor = |v: f32| Tensor::from_vec(vec![v], [1], device)?.to_dtype(dtype);
        let floors = (floor(COUNT_FLOOR)?, floor(NORM_FLOOR)?);
        Ok(Bert {
            config,
            tokenizer,
            word,
            position,
            token_type,
            embed_norm,
            layers,
            floors,
            dtype,
        })
    }

    /// The encoder's configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The dtype the weights were converted to (and the hidden states are computed in).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &BertTokenizer {
        &self.tokenizer
    }

    /// Token ids and mask (b, s) for `texts`, padded to the longest and truncated to
    /// `max_seq_length` (256), `[CLS]` and `[SEP]` added by the tokenizer's post-processor.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Batch> {
        self.tokenizer.encode(texts)
    }

    /// Last hidden states (b, s, H) for `ids` (b, s) u32 and `mask` (b, s) u32 (1 = real
    /// token). Runs under the scopes `embeddings` and `layer.{i}.attention` / `layer.{i}.ffn`.
    /// The pass runs on the pool's workers ([`tally_tensor::on_pool`]).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        tally_tensor::on_pool(|| self.forward_here(ids, mask))
    }

    /// [`Bert::forward`] on this thread.
    fn forward_here(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        const OP: &str = "Bert::forward";
        if ids.rank() != 2 || ids.dtype() != DType::U32 {
            return Err(Error::shape(OP, ids.shape(), "ids must be (b, s) u32"));
        }
        if mask.dims() != ids.dims() || mask.dtype() != DType::U32 {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: ids.shape().clone(),
                rhs: mask.shape().clone(),
            });
        }
        let s = ids.dims()[1];
        if s == 0 || s > self.config.max_position_embeddings {
            return Err(Error::shape(
                OP,
                ids.shape(),
                format!(
                    "sequence length must be 1..={}",
                    self.config.max_position_embeddings
                ),
            ));
        }
        let mut x = scope("embeddings", || -> Result<Tensor> {
            // word (b, s, H) + position rows 0..s (s, H) + token type 0 (1, H), broadcast.
            let e = self
                .word
                .forward(ids)?
                .add(&self.position.narrow(0, 0, s)?)?
                .add(&self.token_type)?;
            self.embed_norm.forward(&e)
        })?;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, mask, i)?;
        }
        Ok(x)
    }

    /// Sentence embeddings (b, H) from hidden states (b, s, H) and `mask` (b, s) u32: the
    /// mean over real tokens (Σ mask·h / max(Σ mask, 1e-9)), then divided by
    /// max(‖·‖₂, 1e-12), as sentence-transformers' Pooling and Normalize modules do.
    /// Runs under the scope `pooling`.
    pub fn pool(&self, hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
        scope("pooling", || {
            let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?; // (b, s, 1)
            let summed = hidden.mul(&m)?.sum(1, false)?; // (b, H)
            let count = m.sum(1, false)?.maximum(&self.floors.0)?; // (b, 1)
            let mean = summed.div(&count)?;
            let norm = mean
                .mul(&mean)?
                .sum(1, true)?
                .sqrt()?
                .maximum(&self.floors.1)?; // (b, 1)
            mean.div(&norm)
        })
    }

    /// Unit-length sentence embeddings (b, H) for `texts`: tokenize, [`Bert::forward`],
    /// [`Bert::pool`], on the model's device.
    pub fn embed(&self, texts: &[&str]) -> Result<Tensor> {
        let batch = self.tokenize(texts)?;
        let device = self.device();
        let (ids, mask) = (batch.ids.to_device(device)?, batch.mask.to_device(device)?);
        let hidden = self.forward(&ids, &mask)?;
        self.pool(&hidden, &mask)
    }

    /// The device its weights are on.
    pub fn device(&self) -> Device {
        self.position.device()
    }

    /// Parameters the model loads and uses: embeddings (word, position, token type,
    /// LayerNorm) and the L layers; 22,565,376 for all-MiniLM-L6-v2. The checkpoint's
    /// 22,713,216 float parameters (the "22.7M") also hold the unused pooler (H² + H).
    pub fn num_params(&self) -> usize {
        let c = &self.config;
        let h = c.hidden_size;
        let embeddings = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * h + 2 * h;
        embeddings + c.num_hidden_layers * EncoderLayer::num_params(c)
    }

    /// The matrix-product FPO of one forward pass of all-MiniLM-L6-v2 over a (batch, seq)
    /// batch, written from the architecture (L = 6, H = 384, I = 1536), with every query
    /// seeing every key: see [`BertConfig::analytic_matmul_fpo`]. This is what
    /// [`tally_core::Ledger::contraction_fpo`] reports for a batch without padding, and
    /// `contraction_fpo_analytic` for any batch.
    pub fn analytic_matmul_fpo(batch: usize, seq: usize) -> u64 {
        BertConfig::all_minilm_l6_v2().analytic_matmul_fpo(batch, seq)
    }
}
