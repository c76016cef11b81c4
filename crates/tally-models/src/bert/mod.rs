//! BERT sentence encoders: all-MiniLM-L6-v2 (6 layers, H = 384, 12 heads, 22.7M parameters)
//! as sentence-transformers runs it (mean pooling over real tokens, then L2 normalisation),
//! on Tally's counted ops. The checkpoint lives in `cache_dir()/all-minilm-l6-v2`, put
//! there by `models/fetch minilm`.

mod config;
mod layer;
mod model;
mod tokenize;

pub use config::BertConfig;
pub use layer::EncoderLayer;
pub use model::Bert;
pub use tokenize::{Batch, BertTokenizer};

/// The folder name of all-MiniLM-L6-v2 under [`crate::cache_dir`].
pub const MINILM_DIR: &str = "all-minilm-l6-v2";
