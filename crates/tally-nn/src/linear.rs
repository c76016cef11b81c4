//! [`Linear`]: y = x·Wᵀ + b over the last dimension, PyTorch layout (`weight` (out, in), `bias` (out)).

use tally_core::{Error, Result, Shape};
use tally_tensor::Tensor;

use crate::WeightView;

/// A fully connected layer: x (…, in) → (…, out).
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer over `weight` (out, in) and an optional `bias` (out) of the same dtype.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        if weight.rank() != 2 || weight.dims().contains(&0) {
            return Err(Error::shape(
                "linear",
                weight.shape(),
                "weight must be (out, in), both > 0",
            ));
        }
        if let Some(b) = &bias {
            if b.dims() != [weight.dims()[0]] || b.dtype() != weight.dtype() {
                return Err(Error::ShapeMismatch {
                    op: "linear bias",
                    lhs: weight.shape().clone(),
                    rhs: b.shape().clone(),
                });
            }
        }
        Ok(Linear { weight, bias })
    }

    /// Loads `weight` (out, in) and, when `bias`, `bias` (out) from `vb` as `vb.dtype()`.
    pub fn load(vb: &WeightView, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
        let weight = vb.get("weight", [out_dim, in_dim], vb.dtype())?;
        let bias = match bias {
            true => Some(vb.get("bias", out_dim, vb.dtype())?),
            false => None,
        };
        Linear::new(weight, bias)
    }

    /// The weight, (out, in).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, (out), if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }

    /// x (…, in) → (…, out): one counted matmul of (rows, in) by Wᵀ (a view) with the
    /// bias fused in its epilogue. Contiguous input is reshaped as a view; strided input
    /// of rank > 2 is copied (a counted copy) first.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (in_dim, out_dim) = (self.in_dim(), self.out_dim());
        if x.rank() == 0 || x.shape().last() != in_dim {
            return Err(Error::ShapeMismatch {
                op: "linear",
                lhs: x.shape().clone(),
                rhs: self.weight.shape().clone(),
            });
        }
        let wt = self.weight.t()?;
        if x.rank() == 2 {
            return x.matmul_bias(&wt, self.bias.as_ref());
        }
        let rows = x.elem_count() / in_dim;
        let y = x
            .reshape([rows, in_dim])?
            .matmul_bias(&wt, self.bias.as_ref())?;
        let mut dims = x.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = out_dim;
        }
        y.reshape(Shape::new(dims))
    }
}
