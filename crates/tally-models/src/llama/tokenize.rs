//! [`LlamaTokenizer`]: a GPT-2 byte-level BPE tokenizer built with the `tokenizers` crate
//! from a GGUF file's vocabulary and merges (`tokenizer.ggml.model = gpt2`), the tokenizer
//! transformers builds from the same file.

use tally_core::{Error, Result};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// GGUF's token type of control tokens (`<|im_start|>`, `<|endoftext|>`, …).
const CONTROL: i32 = 3;

/// Byte-level BPE (no prefix space, no BOS added), with the control tokens as special
/// tokens that are matched whole and skipped when decoding.
#[derive(Clone)]
pub struct LlamaTokenizer {
    inner: Tokenizer,
    eos: Option<u32>,
}

impl std::fmt::Debug for LlamaTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("eos", &self.eos)
            .finish()
    }
}

impl LlamaTokenizer {
    /// Builds the tokenizer from `tokens` (by id), `merges` ("left right") and GGUF token
    /// types; `eos` is the end-of-sequence id generation stops at.
    pub fn from_vocab(
        tokens: &[String],
        merges: &[String],
        token_types: &[i32],
        eos: Option<u32>,
    ) -> Result<LlamaTokenizer> {
        let bad = |reason: String| Error::invalid("LlamaTokenizer::from_vocab", reason);
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| bad(format!("merge `{m}` is not two tokens")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(token_types)
            .filter(|(_, &ty)| ty == CONTROL)
            .map(|(t, _)| AddedToken::from(t.clone(), true))
            .collect();
        inner
            .add_special_tokens(specials)
            .map_err(|e| bad(e.to_string()))?;
        Ok(LlamaTokenizer { inner, eos })
    }

    /// Token ids of `text`, no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::invalid("LlamaTokenizer::encode", e.to_string()))
    }

    /// The text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| Error::invalid("LlamaTokenizer::decode", e.to_string()))
    }

    /// The end-of-sequence id, when the vocabulary names one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Tokens in the vocabulary, special ones included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
