//! Elementwise ops: unary functions, affine maps and broadcasting binary ops.

use tally_core::backend::BackendStorage;
use tally_core::{cost, BinaryOp, Result, Shape, UnaryOp};

use crate::dispatch::{on_backend, run, Backend};
use crate::Tensor;

impl Tensor {
    /// Elementwise `op(x)`, for float tensors.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        self.float(op.name())?;
        let n = self.elem_count();
        let analytic = cost::unary(op, n, self.layout().distinct_elems(), self.dtype());
        run(op.id(), &[self], self.shape().clone(), analytic, || {
            on_backend!(self, |s: B| s.unary(self.layout(), op))
        })
    }

    /// max(x, 0).
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }

    /// min(max(x, 0), 6), in one pass.
    pub fn relu6(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu6)
    }

    /// GELU with the exact erf.
    pub fn gelu_erf(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluErf)
    }

    /// GELU, tanh approximation.
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh)
    }

    /// x·σ(x).
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }

    /// σ(x).
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }

    /// tanh(x).
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }

    /// eˣ.
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }

    /// ln(x).
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }

    /// √x.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }

    /// 1/x.
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }

    /// −x.
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }

    /// `mul·x + add` with scalars.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        self.float("affine")?;
        let n = self.elem_count();
        let analytic = cost::affine(n, self.layout().distinct_elems(), self.dtype());
        run(
            tally_core::OpId::Affine,
            &[self],
            self.shape().clone(),
            analytic,
            || on_backend!(self, |s: B| s.affine(self.layout(), mul, add)),
        )
    }

    /// Elementwise `op(self, rhs)` under NumPy broadcasting.
    pub fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.float(op.name())?;
        self.same_kind(op.name(), rhs)?;
        let shape = Shape::broadcast(op.name(), self.shape(), rhs.shape())?;
        let a = self.layout().broadcast_as(&shape)?;
        let b = rhs.layout().broadcast_as(&shape)?;
        let analytic = cost::binary(
            op,
            shape.elem_count(),
            self.layout().distinct_elems(),
            rhs.layout().distinct_elems(),
            self.dtype(),
        );
        run(op.id(), &[self, rhs], shape, analytic, || {
            on_backend!(self, |x: B| x.binary(&a, B::of(op.name(), rhs)?, &b, op))
        })
    }

    /// self + rhs (broadcasting).
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Add)
    }

    /// self − rhs (broadcasting).
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Sub)
    }

    /// self · rhs (broadcasting).
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Mul)
    }

    /// self / rhs (broadcasting).
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Div)
    }

    /// max(self, rhs) (broadcasting).
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Maximum)
    }

    /// min(self, rhs) (broadcasting).
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Minimum)
    }

    /// silu(self)·rhs (broadcasting): a SwiGLU gate in one pass and one record, the same
    /// values and FPO as `self.silu()?.mul(rhs)` without the intermediate tensor.
    pub fn silu_mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::SiluMul)
    }
}
