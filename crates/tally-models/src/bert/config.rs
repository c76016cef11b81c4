//! [`BertConfig`]: the hyper-parameters of a BERT encoder from a Hugging Face `config.json`,
//! plus the sentence-transformers settings (`sentence_bert_config.json`, `1_Pooling/config.json`)
//! that [`super::Bert`] follows.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use tally_core::{Error, Result};

/// The fields of a BERT `config.json` the encoder needs (others are ignored).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct BertConfig {
    /// Width of the hidden states, H (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Attention heads per layer (12); the head width is `hidden_size / num_attention_heads`.
    pub num_attention_heads: usize,
    /// Encoder layers, L (6).
    pub num_hidden_layers: usize,
    /// Width of the feed-forward block, I (1536).
    pub intermediate_size: usize,
    /// Epsilon of every LayerNorm (1e-12).
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward block; only `gelu` (exact erf GELU) is supported.
    pub hidden_act: String,
    /// Rows of the word-embedding table (30522).
    pub vocab_size: usize,
    /// Rows of the position-embedding table, the longest input the model takes (512).
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (2).
    #[serde(default = "two")]
    pub type_vocab_size: usize,
}

fn two() -> usize {
    2
}

/// `sentence_bert_config.json`: how sentence-transformers feeds the encoder.
#[derive(Clone, Debug, Deserialize)]
struct SentenceConfig {
    max_seq_length: usize,
}

/// `1_Pooling/config.json`: which pooling sentence-transformers applies.
#[derive(Clone, Debug, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// `dir/name`, or an `Io` error naming it and saying how to fetch the model when absent.
pub(crate) fn model_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    Err(Error::Io {
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not found; run `models/fetch minilm` to download all-MiniLM-L6-v2 into the cache",
        ),
    })
}

/// Reads and parses the JSON file `dir/name`.
fn read_json<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let path = model_file(dir, name)?;
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })
}

impl BertConfig {
    /// Reads `dir/config.json` and checks that the encoder it describes is one Tally runs.
    pub fn load(dir: &Path) -> Result<BertConfig> {
        let c: BertConfig = read_json(dir, "config.json")?;
        let bad = |reason: String| Error::BadCheckpoint {
            path: dir.join("config.json"),
            tensor: None,
            reason,
        };
        if c.hidden_act != "gelu" {
            return Err(bad(format!(
                "hidden_act `{}` is not supported (only `gelu`, the exact erf GELU)",
                c.hidden_act
            )));
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            )));
        }
        Ok(c)
    }

    /// Width of one attention head, H / heads (32 for MiniLM-L6).
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The configuration of all-MiniLM-L6-v2 (`nreimers/MiniLM-L6-H384-uncased`).
    pub fn all_minilm_l6_v2() -> BertConfig {
        BertConfig {
            hidden_size: 384,
            num_attention_heads: 12,
            num_hidden_layers: 6,
            intermediate_size: 1536,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            vocab_size: 30522,
            max_position_embeddings: 512,
            type_vocab_size: 2,
        }
    }

    /// Matrix-product FPO of one encoder pass over B sequences of S tokens, dense (every
    /// query sees every key), 2 FPO per multiply-accumulate:
    ///
    /// ```text
    /// 2·L·[ B·S·(4·H² + 2·H·I)   q, k, v and attention-output projections (H×H),
    ///                            intermediate (H×I) and output (I×H) dense layers
    ///     + 2·B·S²·H ]           q·kᵀ and p·v: B·heads·S·S·d MACs each, heads·d = H
    /// ```
    ///
    /// Embedding gathers, bias adds, norms, GELU, softmax and pooling are not products
    /// and are left out, as PyTorch's FlopCounterMode leaves them out. (FlopCounterMode on
    /// sentence-transformers also counts the unused pooler, 2·B·H² more.)
    pub fn analytic_matmul_fpo(&self, batch: usize, seq: usize) -> u64 {
        let (l, h, i) = (
            self.num_hidden_layers as u64,
            self.hidden_size as u64,
            self.intermediate_size as u64,
        );
        let (b, s) = (batch as u64, seq as u64);
        2 * l * (b * s * (4 * h * h + 2 * h * i) + 2 * b * s * s * h)
    }
}

/// The longest token sequence sentence-transformers feeds the encoder
/// (`max_seq_length` of `dir/sentence_bert_config.json`, 256 for all-MiniLM-L6-v2),
/// capped at the position table's length.
pub(crate) fn max_seq_length(dir: &Path, config: &BertConfig) -> Result<usize> {
    let s: SentenceConfig = read_json(dir, "sentence_bert_config.json")?;
    Ok(s.max_seq_length.min(config.max_position_embeddings))
}

/// Fails unless `dir/1_Pooling/config.json` asks for mean pooling alone, the only
/// pooling [`super::Bert::embed`] implements.
pub(crate) fn check_mean_pooling(dir: &Path) -> Result<()> {
    let p: PoolingConfig = read_json(dir, "1_Pooling/config.json")?;
    let others = p.pooling_mode_cls_token
        || p.pooling_mode_max_tokens
        || p.pooling_mode_mean_sqrt_len_tokens;
    if !p.pooling_mode_mean_tokens || others {
        return Err(Error::BadCheckpoint {
            path: dir.join("1_Pooling/config.json"),
            tensor: None,
            reason: "only mean pooling (pooling_mode_mean_tokens alone) is supported".into(),
        });
    }
    Ok(())
}
