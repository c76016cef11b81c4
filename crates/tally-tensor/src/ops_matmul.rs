//! Batched matrix products, with transposes as views and an optional fused bias.

use tally_core::backend::BackendStorage;
use tally_core::{cost, Error, OpId, Result, Shape};

use crate::dispatch::{on_backend, opt_view, run, Backend};
use crate::Tensor;

impl Tensor {
    /// A product's bias: `self`'s kind (device, dtype) and shape (n), or a typed error.
    pub(crate) fn check_bias(
        &self,
        op: &'static str,
        bias: Option<&Tensor>,
        n: usize,
    ) -> Result<()> {
        if let Some(bias) = bias {
            self.same_kind(op, bias)?;
            if bias.dims() != [n] {
                return Err(Error::shape(
                    op,
                    bias.shape(),
                    format!("bias must be ({n})"),
                ));
            }
        }
        Ok(())
    }

    /// (…, m, k) · (…, k, n) → (…, m, n); batch dimensions broadcast. Transposed
    /// operands (from [`Tensor::t`]) are read in place, not copied.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_bias(rhs, None)
    }

    /// `self · rhs + bias` with `bias` of shape (n), added in the product's epilogue.
    pub fn matmul_bias(&self, rhs: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "matmul";
        self.float(OP)?;
        self.same_kind(OP, rhs)?;
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            });
        }
        let (m, k) = (self.dims()[self.rank() - 2], self.dims()[self.rank() - 1]);
        let (k2, n) = (rhs.dims()[rhs.rank() - 2], rhs.dims()[rhs.rank() - 1]);
        if k != k2 {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            });
        }
        self.check_bias(OP, bias, n)?;
        let batch_a = Shape::new(&self.dims()[..self.rank() - 2]);
        let batch_b = Shape::new(&rhs.dims()[..rhs.rank() - 2]);
        let batch = Shape::broadcast(OP, &batch_a, &batch_b)?;
        let mut a_dims = tally_core::shape::Dims::from_slice(batch.dims());
        a_dims.extend([m, k]);
        let mut b_dims = tally_core::shape::Dims::from_slice(batch.dims());
        b_dims.extend([k, n]);
        let mut out_dims = tally_core::shape::Dims::from_slice(batch.dims());
        out_dims.extend([m, n]);
        let a = self.layout().broadcast_as(&Shape::new(a_dims))?;
        let b = rhs.layout().broadcast_as(&Shape::new(b_dims))?;
        let analytic = cost::matmul(
            batch.elem_count(),
            m,
            n,
            k,
            self.layout().distinct_elems(),
            rhs.layout().distinct_elems(),
            bias.is_some(),
            self.dtype(),
        );
        let mut inputs: smallvec::SmallVec<[&Tensor; 3]> = smallvec::smallvec![self, rhs];
        inputs.extend(bias);
        run(
            OpId::Matmul,
            &inputs,
            Shape::new(out_dims),
            analytic,
            || {
                on_backend!(self, |x: B| x.matmul(
                    &a,
                    B::of("matmul", rhs)?,
                    &b,
                    opt_view::<B>("matmul", bias)?
                ))
            },
        )
    }
}
