//! The shipped digits models: MLPs on scikit-learn's 8×8 digits, trained by
//! `models/digits/train.py` and stored in `models/digits/*.safetensors`.

mod data;
mod family;
mod mlp;

pub use data::{Digits, CLASSES, PIXELS};
pub use family::{family, family_dir, FamilyMember};
pub use mlp::DigitsMlp;
