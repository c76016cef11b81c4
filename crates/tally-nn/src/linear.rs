//! [`Linear`]: y = x·Wᵀ + b over the last dimension, PyTorch layout (`weight` (out, in), `bias` (out)).

use tally_core::{Error, Result, Shape};
use tally_tensor::Tensor;

use crate::WeightView;

/// A fully connected layer: x (…, in) → (…, out). The weight is kept transposed, (in, out)
/// row-major, copied once when the layer is made, so every product reads B = Wᵀ along its
/// rows, which is how the GEMM packs its panels fastest.
#[derive(Clone, Debug)]
pub struct Linear {
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer over `weight` (out, in) and an optional `bias` (out) of the same dtype; the
    /// weight is copied once into the transposed layout the products read fastest.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        Linear::checked(&weight, bias.as_ref())?;
        // Made outside any measured region (at load), so the one-time copy is not a step
        // of the forward pass.
        let weight_t = weight.t()?.contiguous()?;
        Ok(Linear { weight_t, bias })
    }

    /// A layer that reads `weight` (out, in) in place, through a transposed view, without
    /// the copy [`Linear::new`] makes: for a weight shared with another layer (a tied
    /// embedding table), where a second copy would cost more memory than it saves time.
    pub fn shared(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        Linear::checked(&weight, bias.as_ref())?;
        let weight_t = weight.t()?;
        Ok(Linear { weight_t, bias })
    }

    /// Checks a weight (out, in) and bias (out) pair.
    fn checked(weight: &Tensor, bias: Option<&Tensor>) -> Result<()> {
        if weight.rank() != 2 || weight.dims().contains(&0) {
            return Err(Error::shape(
                "linear",
                weight.shape(),
                "weight must be (out, in), both > 0",
            ));
        }
        if let Some(b) = bias {
            if b.dims() != [weight.dims()[0]] || b.dtype() != weight.dtype() {
                return Err(Error::ShapeMismatch {
                    op: "linear bias",
                    lhs: weight.shape().clone(),
                    rhs: b.shape().clone(),
                });
            }
        }
        Ok(())
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

    /// The weight, (out, in): a transposed view of the stored (in, out) copy.
    pub fn weight(&self) -> Tensor {
        self.weight_t.t().expect("a rank-2 tensor transposes")
    }

    /// The bias, (out), if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.weight_t.dims()[0]
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.weight_t.dims()[1]
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
                rhs: self.weight().shape().clone(),
            });
        }
        let wt = &self.weight_t;
        if x.rank() == 2 {
            return x.matmul_bias(wt, self.bias.as_ref());
        }
        let rows = x.elem_count() / in_dim;
        let y = x
            .reshape([rows, in_dim])?
            .matmul_bias(wt, self.bias.as_ref())?;
        let mut dims = x.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = out_dim;
        }
        y.reshape(Shape::new(dims))
    }
}
