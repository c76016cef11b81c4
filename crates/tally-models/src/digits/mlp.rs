//! [`DigitsMlp`]: 64 → hidden… → 10 with ReLU between layers.

use std::path::Path;

use tally_core::{scope, DType, Device, Error, Result};
use tally_nn::{Linear, WeightStore};
use tally_tensor::Tensor;

use super::{CLASSES, PIXELS};

/// A multi-layer perceptron over flattened 8×8 images; the depth and widths are read
/// from the checkpoint (`layers.{i}.weight` (out, in), `layers.{i}.bias` (out)).
pub struct DigitsMlp {
    layers: Vec<Linear>,
    /// Each layer's scope name (`layers.{i}`), made once: a batch-1 pass is a few
    /// microseconds, and formatting them on every pass cost 2% of its instructions.
    scopes: Vec<String>,
    params: usize,
}

impl DigitsMlp {
    /// Loads the checkpoint at `path` with weights converted to `dtype`.
    pub fn load(path: &Path, dtype: DType) -> Result<DigitsMlp> {
        DigitsMlp::load_on(path, dtype, Device::Cpu)
    }

    /// [`DigitsMlp::load`] with the weights placed on `device` (a GPU: `Device::Cuda(n)`).
    pub fn load_on(path: &Path, dtype: DType, device: Device) -> Result<DigitsMlp> {
        let store = WeightStore::open(path)?.on_device(device);
        let mut layers = Vec::new();
        let mut params = 0;
        let mut width = PIXELS;
        while store.contains(&format!("layers.{}.weight", layers.len())) {
            let i = layers.len();
            let w = store.get_any(&format!("layers.{i}.weight"))?;
            let out = match w.dims() {
                [out, inp] if *inp == width => *out,
                _ => {
                    return Err(Error::TensorShape {
                        path: path.to_path_buf(),
                        name: format!("layers.{i}.weight"),
                        expected: [w.dims().first().copied().unwrap_or(0), width].into(),
                        found: w.shape().clone(),
                    })
                }
            };
            let layer = Linear::load(
                &store.pp(format!("layers.{i}")).with_dtype(dtype),
                width,
                out,
                true,
            )?;
            params += out * width + out;
            layers.push(layer);
            width = out;
        }
        if layers.is_empty() || width != CLASSES {
            return Err(Error::BadCheckpoint {
                path: path.to_path_buf(),
                tensor: None,
                reason: format!(
                    "expected layers.0 … layers.N with 64 inputs and {CLASSES} outputs, found {} layers ending at width {width}",
                    layers.len()
                ),
            });
        }
        let scopes = (0..layers.len()).map(|i| format!("layers.{i}")).collect();
        Ok(DigitsMlp {
            layers,
            scopes,
            params,
        })
    }

    /// Logits (n, 10) for pixels (n, 64); each layer runs under the scope `layers.{i}`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, (layer, name)) in self.layers.iter().zip(&self.scopes).enumerate() {
            h = scope(name, || -> Result<Tensor> {
                let y = layer.forward(&h)?;
                if i < last {
                    y.relu()
                } else {
                    Ok(y)
                }
            })?;
        }
        Ok(h)
    }

    /// Parameter count.
    pub fn num_params(&self) -> usize {
        self.params
    }

    /// Hidden widths, input to output.
    pub fn widths(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.out_dim()).collect()
    }

    /// Fraction of rows whose argmax equals the label.
    pub fn accuracy(logits: &Tensor, labels: &[u32]) -> Result<f64> {
        let pred = logits.argmax(1, false)?.to_vec::<u32>()?;
        if pred.len() != labels.len() || labels.is_empty() {
            return Err(Error::invalid(
                "accuracy",
                format!("{} predictions for {} labels", pred.len(), labels.len()),
            ));
        }
        let right = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(right as f64 / labels.len() as f64)
    }
}
