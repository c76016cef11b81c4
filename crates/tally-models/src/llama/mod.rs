//! Llama-architecture decoders: SmolLM2-135M-Instruct (30 layers, H = 576, 9 query and 3
//! key/value heads of 64, SwiGLU of 1536, RoPE θ = 100000, tied embeddings), read from the
//! GGUF file of `models/fetch smollm2` (dequantised to f32 at load) and run on Tally's
//! counted ops, with a KV cache for generation.

mod cache;
mod config;
mod gguf;
mod layer;
mod model;
mod tokenize;

pub use cache::KvCache;
pub use config::LlamaConfig;
pub use layer::{DecoderLayer, RopeRows};
pub use model::{Llama, Sampling};
pub use tokenize::LlamaTokenizer;

/// The folder name of SmolLM2-135M-Instruct under [`crate::cache_dir`].
pub const SMOLLM2_DIR: &str = "smollm2";

/// The GGUF file `models/fetch smollm2` puts in [`SMOLLM2_DIR`].
pub const GGUF_FILE: &str = "model.gguf";
