//! Normalisation layers over the last dimension: [`LayerNorm`] and [`RmsNorm`].

use tally_core::Result;
use tally_tensor::Tensor;

use crate::WeightView;

/// (x − mean)/√(var + eps)·weight + bias over the last dimension (dim).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl LayerNorm {
    /// A layer over `weight` (dim) and an optional `bias` (dim); shapes are checked by
    /// [`Tensor::layer_norm`] against the input on each forward.
    pub fn new(weight: Tensor, bias: Option<Tensor>, eps: f64) -> LayerNorm {
        LayerNorm { weight, bias, eps }
    }

    /// Loads `weight` (dim) and `bias` (dim) from `vb` as `vb.dtype()`.
    pub fn load(vb: &WeightView, dim: usize, eps: f64) -> Result<LayerNorm> {
        let weight = vb.get("weight", dim, vb.dtype())?;
        let bias = vb.get("bias", dim, vb.dtype())?;
        Ok(LayerNorm::new(weight, Some(bias), eps))
    }

    /// The scale, (dim).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The shift, (dim), if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The variance epsilon.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// x (…, dim) → (…, dim), one counted layer-norm kernel.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(Some(&self.weight), self.bias.as_ref(), self.eps)
    }

    /// The normalisation of the residual stream `x + delta`, both (…, dim), in one
    /// counted kernel ([`Tensor::add_layer_norm`]): what a post-norm block (BERT) computes
    /// where a sub-block's output joins the stream, without writing the sum out.
    pub fn forward_residual(&self, x: &Tensor, delta: &Tensor) -> Result<Tensor> {
        x.add_layer_norm(delta, Some(&self.weight), self.bias.as_ref(), self.eps)
    }
}

/// x/√(mean(x²) + eps)·weight over the last dimension (dim).
#[derive(Clone, Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// A layer over `weight` (dim).
    pub fn new(weight: Tensor, eps: f64) -> RmsNorm {
        RmsNorm { weight, eps }
    }

    /// Loads `weight` (dim) from `vb` as `vb.dtype()`.
    pub fn load(vb: &WeightView, dim: usize, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm::new(vb.get("weight", dim, vb.dtype())?, eps))
    }

    /// The scale, (dim).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The epsilon added to the mean square.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// x (…, dim) → (…, dim), one counted RMS-norm kernel.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.rms_norm(Some(&self.weight), self.eps)
    }

    /// The residual stream `x + delta` and its normalisation, both (…, dim), in one
    /// counted kernel ([`Tensor::add_rms_norm`]): what a pre-norm block computes where one
    /// sub-block's output joins the stream and the next sub-block's norm reads it.
    pub fn forward_residual(&self, x: &Tensor, delta: &Tensor) -> Result<(Tensor, Tensor)> {
        x.add_rms_norm(delta, Some(&self.weight), self.eps)
    }
}
