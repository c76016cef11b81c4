//! [`BertTokenizer`]: the checkpoint's `tokenizer.json` (WordPiece, lower-casing, `[CLS]`/`[SEP]`
//! post-processor) through the `tokenizers` crate, padding a batch to its longest text as
//! sentence-transformers does; and [`Batch`], the tensors it produces.

use std::path::Path;

use tally_core::{Device, Error, Result};
use tally_tensor::Tensor;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::config::model_file;

/// Token ids and attention mask of a batch of texts, padded (on the right) to the longest.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Token ids, (b, s) u32, `[CLS]` first and `[SEP]` last, then `[PAD]` (id 0).
    pub ids: Tensor,
    /// Attention mask, (b, s) u32: 1 for a real token (including `[CLS]` and `[SEP]`), 0 for padding.
    pub mask: Tensor,
    /// Real tokens per text (the number of ones in its mask row).
    pub lengths: Vec<usize>,
}

/// A Hugging Face tokenizer set to truncate at `max_len` tokens (special tokens included)
/// and pad each batch to its longest text.
#[derive(Clone)]
pub struct BertTokenizer {
    inner: Tokenizer,
    max_len: usize,
}

impl std::fmt::Debug for BertTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl BertTokenizer {
    /// Loads `dir/tokenizer.json`. Its stored truncation (128) and fixed padding are
    /// replaced: truncation at `max_len`, padding to the batch's longest text with the
    /// file's pad token.
    pub fn load(dir: &Path, max_len: usize) -> Result<BertTokenizer> {
        let path = model_file(dir, "tokenizer.json")?;
        let bad = |reason: String| Error::BadCheckpoint {
            path: path.clone(),
            tensor: None,
            reason,
        };
        let mut inner = Tokenizer::from_file(&path).map_err(|e| bad(e.to_string()))?;
        let padding = PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_to_multiple_of: None,
            ..inner.get_padding().cloned().unwrap_or_default()
        };
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..TruncationParams::default()
            }))
            .map_err(|e| bad(format!("truncation at {max_len}: {e}")))?
            .with_padding(Some(padding));
        Ok(BertTokenizer { inner, max_len })
    }

    /// The longest sequence a batch can hold, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Tokenizes `texts` into a [`Batch`] of (b, s) tensors, s = the longest text's
    /// token count (≤ [`BertTokenizer::max_len`]). An empty list is an error.
    pub fn encode(&self, texts: &[&str]) -> Result<Batch> {
        if texts.is_empty() {
            return Err(Error::invalid("tokenize", "no texts given"));
        }
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::invalid("tokenize", e.to_string()))?;
        let seq = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(texts.len() * seq);
        let mut mask = Vec::with_capacity(texts.len() * seq);
        let mut lengths = Vec::with_capacity(texts.len());
        for (i, e) in encodings.iter().enumerate() {
            if e.get_ids().len() != seq {
                return Err(Error::invalid(
                    "tokenize",
                    format!(
                        "text {i} padded to {} tokens, text 0 to {seq}",
                        e.get_ids().len()
                    ),
                ));
            }
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
            lengths.push(e.get_attention_mask().iter().filter(|&&m| m != 0).count());
        }
        let b = texts.len();
        Ok(Batch {
            ids: Tensor::from_vec(ids, [b, seq], Device::Cpu)?,
            mask: Tensor::from_vec(mask, [b, seq], Device::Cpu)?,
            lengths,
        })
    }
}
