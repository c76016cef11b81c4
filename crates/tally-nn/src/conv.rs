//! [`Conv2d`]: 2-D convolution of NCHW input, PyTorch layout (`weight` (c_out, c_in/groups, k, k), `bias` (c_out)).

use tally_core::backend::Conv2dParams;
use tally_core::{Error, Result};
use tally_tensor::Tensor;

use crate::WeightView;

/// A 2-D convolution with a square kernel.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    params: Conv2dParams,
}

impl Conv2d {
    /// A layer over `weight` (c_out, c_in/groups, kh, kw) and an optional `bias` (c_out).
    pub fn new(weight: Tensor, bias: Option<Tensor>, params: Conv2dParams) -> Result<Conv2d> {
        if weight.rank() != 4 {
            return Err(Error::shape(
                "conv2d",
                weight.shape(),
                "kernel must be (c_out, c_in/groups, kh, kw)",
            ));
        }
        if params.stride == 0 || weight.dims()[0].checked_rem(params.groups) != Some(0) {
            return Err(Error::invalid(
                "conv2d",
                format!(
                    "groups {} and stride {} must be positive and divide c_out {}",
                    params.groups,
                    params.stride,
                    weight.dims()[0]
                ),
            ));
        }
        Ok(Conv2d {
            weight,
            bias,
            params,
        })
    }

    /// Loads `weight` (c_out, c_in/groups, kernel, kernel) and, when `bias`, `bias` (c_out)
    /// from `vb` as `vb.dtype()`.
    pub fn load(
        vb: &WeightView,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        params: Conv2dParams,
        bias: bool,
    ) -> Result<Conv2d> {
        if c_in.checked_rem(params.groups) != Some(0) {
            return Err(Error::invalid(
                "conv2d",
                format!(
                    "groups {} must be positive and divide c_in {c_in}",
                    params.groups
                ),
            ));
        }
        let weight = vb.get(
            "weight",
            [c_out, c_in / params.groups, kernel, kernel],
            vb.dtype(),
        )?;
        let bias = match bias {
            true => Some(vb.get("bias", c_out, vb.dtype())?),
            false => None,
        };
        Conv2d::new(weight, bias, params)
    }

    /// The kernel, (c_out, c_in/groups, kh, kw).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, (c_out), if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Stride, padding and groups.
    pub fn params(&self) -> Conv2dParams {
        self.params
    }

    /// x (n, c_in, h, w) → (n, c_out, h_out, w_out), one counted conv2d kernel.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.bias.as_ref(), self.params)
    }
}
