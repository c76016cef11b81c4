//! [`MobileNetV2`]: torchvision's ImageNet classifier, loaded from the converted checkpoint
//! (BatchNorms folded at load) and run on Tally's counted convolution, pooling and matmul.

use std::path::{Path, PathBuf};

use tally_core::backend::ConvActivation;
use tally_core::{scope, DType, Device, Error, Result};
use tally_nn::{Conv2d, Linear, WeightStore};
use tally_tensor::Tensor;

use super::arch::{self, FeatureSpec, IMAGE_SIZE, LAST_CHANNELS, NUM_CLASSES};
use super::block::InvertedResidual;
use super::fold::conv_bn;

/// The checkpoint's file name inside the model folder.
const MODEL_FILE: &str = "model.safetensors";

/// One loaded entry of `features` (boxed: a `Conv2d` carries its shapes inline).
#[derive(Clone, Debug)]
enum Feature {
    /// Conv (BatchNorm folded) + ReLU6.
    ConvRelu6(Box<Conv2d>),
    /// An inverted residual block.
    Block(Box<InvertedResidual>),
}

/// MobileNetV2 (width 1.0, 224×224 ImageNet weights, 3,504,872 parameters in torchvision's
/// count). Inference only: BatchNorms are folded and dropout is the identity.
#[derive(Clone, Debug)]
pub struct MobileNetV2 {
    features: Vec<Feature>,
    classifier: Linear,
    /// The dtype the model computes in.
    dtype: DType,
}

/// `path` itself when it is a file, else `path/model.safetensors`; an `Io` error naming
/// `models/fetch mobilenet` when that file is absent.
fn checkpoint(path: &Path) -> Result<PathBuf> {
    let file = if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    if file.is_file() {
        return Ok(file);
    }
    Err(Error::Io {
        path: file,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not found; run `models/fetch mobilenet` to download and convert MobileNetV2",
        ),
    })
}

impl MobileNetV2 {
    /// Loads `path` (the converted `model.safetensors`, or the folder holding it), folds
    /// each BatchNorm into its convolution (in f64, once; see `fold`) and converts the
    /// weights to `dtype` (f32, bf16 or f16). Checks that the checkpoint holds exactly
    /// torchvision's parameter count.
    pub fn load(path: impl AsRef<Path>, dtype: DType) -> Result<MobileNetV2> {
        MobileNetV2::load_on(path, dtype, Device::Cpu)
    }

    /// [`MobileNetV2::load`] with the folded weights placed on `device` (a GPU:
    /// `Device::Cuda(n)`); the folding itself runs on the host.
    pub fn load_on(path: impl AsRef<Path>, dtype: DType, device: Device) -> Result<MobileNetV2> {
        const OP: &str = "MobileNetV2::load";
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType { op: OP, dtype });
        }
        let store = WeightStore::open(checkpoint(path.as_ref())?)?.on_device(device);
        let params: usize = store
            .tensor_info()
            .iter()
            .filter(|t| !t.name.contains("running_"))
            .map(|t| t.shape.elem_count())
            .sum();
        if params != arch::num_params() {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} holds {params} parameters, MobileNetV2 has {}",
                    store.origin().display(),
                    arch::num_params()
                ),
            ));
        }
        let features = arch::features()
            .into_iter()
            .enumerate()
            .map(|(i, spec)| match spec {
                FeatureSpec::ConvBnRelu6(c) => {
                    let p = format!("features.{i}");
                    let (conv, bn) = (format!("{p}.0"), format!("{p}.1"));
                    conv_bn(&store, &conv, &bn, c, ConvActivation::Relu6, dtype)
                        .map(|c| Feature::ConvRelu6(Box::new(c)))
                }
                FeatureSpec::Block(b) => {
                    InvertedResidual::load(&store, &format!("features.{i}"), b, dtype)
                        .map(|b| Feature::Block(Box::new(b)))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let classifier = Linear::new(
            store.get("classifier.1.weight", [NUM_CLASSES, LAST_CHANNELS], dtype)?,
            Some(store.get("classifier.1.bias", [NUM_CLASSES], dtype)?),
        )?;
        Ok(MobileNetV2 {
            features,
            classifier,
            dtype,
        })
    }

    /// The dtype of the weights and activations.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// torchvision's parameter count (convolutions, BatchNorm weights and biases, classifier):
    /// 3,504,872. The folded model stores the same number minus the BatchNorm scales.
    pub fn num_params(&self) -> usize {
        arch::num_params()
    }

    /// The analytic matrix FPO of [`forward`](Self::forward) on an (n, 3, h, w) batch,
    /// written from the architecture ([`arch::contraction_fpo`]); the executed ledger's
    /// `contraction_fpo()` equals it.
    pub fn contraction_fpo(&self, n: usize, h: usize, w: usize) -> u64 {
        arch::contraction_fpo(n, h, w)
    }

    /// Logits (n, 1000) for images x (n, 3, h, w), normalised with ImageNet's mean and std
    /// (224×224 is what the weights were trained at). x is cast to the model's dtype first
    /// when it differs (a counted cast). Scopes: `features.{i}` (0–18), `pool`, `classifier`.
    /// The pass runs on the pool's workers ([`tally_tensor::on_pool`]).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        tally_tensor::on_pool(|| self.forward_here(x))
    }

    /// [`MobileNetV2::forward`] on this thread.
    fn forward_here(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "MobileNetV2::forward";
        if x.rank() != 4 || x.dims()[1] != 3 {
            return Err(Error::shape(OP, x.shape(), "images must be (n, 3, h, w)"));
        }
        let mut h = if x.dtype() == self.dtype {
            x.clone()
        } else {
            x.to_dtype(self.dtype)?
        };
        for (i, f) in self.features.iter().enumerate() {
            h = scope(&format!("features.{i}"), || match f {
                Feature::ConvRelu6(c) => c.forward(&h),
                Feature::Block(b) => b.forward(&h),
            })?;
        }
        let (n, c, hh, ww) = (h.dims()[0], h.dims()[1], h.dims()[2], h.dims()[3]);
        let pooled = scope("pool", || h.reshape([n, c, hh * ww])?.mean(2, false))?;
        scope("classifier", || self.classifier.forward(&pooled))
    }

    /// The five most probable ImageNet classes for one image (3, h, w) or (1, 3, h, w), as
    /// (class index, softmax probability), most probable first. The softmax runs in f32.
    pub fn classify(&self, image: &Tensor) -> Result<Vec<(usize, f32)>> {
        let x = match image.rank() {
            3 => image.unsqueeze(0)?,
            4 if image.dims()[0] == 1 => image.clone(),
            _ => {
                return Err(Error::shape(
                    "MobileNetV2::classify",
                    image.shape(),
                    format!("one image must be (3, h, w), e.g. (3, {IMAGE_SIZE}, {IMAGE_SIZE})"),
                ))
            }
        };
        let logits = self.forward(&x)?.to_dtype(DType::F32)?;
        let probs = logits.softmax_last()?.to_vec::<f32>()?;
        Ok(top_k(&probs, 5))
    }
}

/// The k largest entries of `p` as (index, value), largest first (ties: lower index first).
pub fn top_k(p: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    idx.into_iter().take(k).map(|i| (i, p[i])).collect()
}
