//! [`Linear`]: y = x·Wᵀ + b over the last dimension, PyTorch layout (`weight` (out, in), `bias` (out)).

use tally_core::{Error, Result, Shape, UnaryOp};
use tally_tensor::{PackedWeight, Tensor};

use crate::WeightView;

/// A fully connected layer: x (…, in) → (…, out). A CPU weight of a dtype that packs
/// (`tally_tensor::packs`: f32, bf16, f16) is packed once, when the layer is made, into the
/// GEMM's panel order (so no product packs it again, and the packed panels are the layer's
/// only copy; f16's are f32, twice its bytes); others keep Wᵀ as (in, out) row-major,
/// which their GEMMs pack fastest.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

/// How a layer holds its weight B = Wᵀ (in, out).
#[derive(Clone, Debug)]
enum Weight {
    /// A dtype that packs, on the CPU: packed panels.
    Packed(PackedWeight),
    /// Anything else: a tensor (contiguous (in, out), or a transposed view of a shared table).
    Plain(Tensor),
}

impl Linear {
    /// A layer over `weight` (out, in) and an optional `bias` (out) of the same dtype; the
    /// weight is copied once into the transposed layout the products read fastest.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        Linear::checked(&weight, bias.as_ref())?;
        let weight_t = weight.t()?;
        let weight = match weight.dtype() {
            d if weight_t.device() == tally_core::Device::Cpu && tally_tensor::packs(d) => {
                Weight::Packed(weight_t.pack_for_matmul()?)
            }
            // Made at load, outside any measured region: the copy is not a forward step.
            _ => Weight::Plain(weight_t.contiguous()?),
        };
        Ok(Linear { weight, bias })
    }

    /// A layer that reads `weight` (out, in) in place, through a transposed view, without
    /// the copy [`Linear::new`] makes: for a weight shared with another layer (a tied
    /// embedding table), where a second copy would cost more memory than it saves time.
    pub fn shared(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        Linear::checked(&weight, bias.as_ref())?;
        Ok(Linear {
            weight: Weight::Plain(weight.t()?),
            bias,
        })
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

    /// The weight, (out, in): unpacked into a new tensor for a packed layer, a transposed
    /// view otherwise.
    pub fn weight(&self) -> Result<Tensor> {
        match &self.weight {
            Weight::Packed(p) => p.to_tensor()?.t(),
            Weight::Plain(t) => t.t(),
        }
    }

    /// B = Wᵀ's (in, out).
    fn dims(&self) -> [usize; 2] {
        match &self.weight {
            Weight::Packed(p) => p.dims(),
            Weight::Plain(t) => [t.dims()[0], t.dims()[1]],
        }
    }

    /// The bias, (out), if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.dims()[0]
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.dims()[1]
    }

    /// x (…, in) → (…, out): one counted matmul of (rows, in) by Wᵀ (packed, or a tensor)
    /// with the bias fused in its epilogue. Contiguous input is reshaped as a view; strided
    /// input of rank > 2 is copied (a counted copy) first.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (in_dim, out_dim) = (self.in_dim(), self.out_dim());
        if x.rank() == 0 || x.shape().last() != in_dim {
            return Err(Error::ShapeMismatch {
                op: "linear",
                lhs: x.shape().clone(),
                rhs: Shape::new(vec![out_dim, in_dim]),
            });
        }
        let wt = match &self.weight {
            Weight::Packed(p) => return x.matmul_packed(p, self.bias.as_ref()),
            Weight::Plain(t) => t,
        };
        if x.rank() == 2 {
            return x.matmul_bias(wt, self.bias.as_ref());
        }
        let rows = x.elem_count() / in_dim;
        let y = x
            .reshape([rows, in_dim])?
            .matmul_bias(wt, self.bias.as_ref())?;
        let mut dims = tally_core::shape::Dims::from_slice(x.dims());
        if let Some(last) = dims.last_mut() {
            *last = out_dim;
        }
        y.reshape(Shape::new(dims))
    }

    /// act(x·Wᵀ + b), (…, in) → (…, out): with a packed weight one counted matmul that
    /// applies `act` as its tasks finish ([`Tensor::matmul_packed_activated`]); otherwise
    /// [`Linear::forward`] then the activation as its own op (a CUDA weight). The values
    /// and the total work are the same either way.
    pub fn forward_activated(&self, x: &Tensor, act: UnaryOp) -> Result<Tensor> {
        match &self.weight {
            Weight::Packed(p) if x.rank() > 0 && x.shape().last() == self.in_dim() => {
                x.matmul_packed_activated(p, self.bias.as_ref(), act)
            }
            _ => self.forward(x)?.unary(act),
        }
    }
}
