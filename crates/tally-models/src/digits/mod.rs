//! The shipped digits models: MLPs on scikit-learn's 8×8 digits, trained by
//! `models/digits/train.py` and stored in `models/digits/*.safetensors`.

mod data;
mod mlp;

pub use data::{Digits, CLASSES, PIXELS};
pub use mlp::DigitsMlp;
