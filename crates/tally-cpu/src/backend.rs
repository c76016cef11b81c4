//! [`BackendStorage`] for [`CpuStorage`]: dtype dispatch to the generic kernels.

use half::{bf16, f16};
use tally_core::backend::{
    AttentionParams, BackendStorage, Conv2dParams, Pool2dParams, RopeStyle, View,
};
use tally_core::{BinaryOp, Counted, DType, Device, Error, Layout, ReduceOp, Result, UnaryOp};

use crate::storage::CpuStorage;
use crate::{attention, binary, conv, copy, embedding, norm, pool, reduce, rope, softmax, unary};

/// Runs `$body` with `$v` bound to the float vector of `$s` and `$T` to its scalar type,
/// wrapping the `Counted<Vec<$T>>` result back into a storage. Integer dtypes are refused.
macro_rules! float_kernel {
    ($op:expr, $s:expr, |$v:ident: $T:ident| $body:expr) => {
        match $s {
            CpuStorage::F32($v) => {
                type $T = f32;
                Ok($body.map(CpuStorage::F32))
            }
            CpuStorage::F16($v) => {
                type $T = f16;
                Ok($body.map(CpuStorage::F16))
            }
            CpuStorage::BF16($v) => {
                type $T = bf16;
                Ok($body.map(CpuStorage::BF16))
            }
            other => Err(Error::UnsupportedDType {
                op: $op,
                dtype: other.dtype(),
            }),
        }
    };
}

/// Borrows an optional operand as a slice of the kernel's element type.
fn opt<'a, T: crate::CpuElem>(
    op: &'static str,
    v: Option<View<'a, CpuStorage>>,
) -> Result<Option<(&'a [T], &'a Layout)>> {
    v.map(|(s, l)| Ok((s.as_slice::<T>(op)?, l))).transpose()
}

impl BackendStorage for CpuStorage {
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }

    fn device(&self) -> Device {
        Device::Cpu
    }

    fn unary(&self, x: &Layout, op: UnaryOp) -> Result<Counted<Self>> {
        float_kernel!(op.name(), self, |v: T| unary::unary::<T>(v, x, op))
    }

    fn affine(&self, x: &Layout, mul: f64, add: f64) -> Result<Counted<Self>> {
        float_kernel!("affine", self, |v: T| unary::affine::<T>(
            v, x, mul as f32, add as f32
        ))
    }

    fn binary(&self, a: &Layout, rhs: &Self, b: &Layout, op: BinaryOp) -> Result<Counted<Self>> {
        float_kernel!(op.name(), self, |v: T| binary::binary::<T>(
            v,
            a,
            rhs.as_slice::<T>(op.name())?,
            b,
            op
        ))
    }

    fn matmul(
        &self,
        a: &Layout,
        rhs: &Self,
        b: &Layout,
        bias: Option<View<'_, Self>>,
    ) -> Result<Counted<Self>> {
        float_kernel!("matmul", self, |v: T| crate::gemm::batched::<T>(
            v,
            a,
            rhs.as_slice::<T>("matmul")?,
            b,
            opt::<T>("matmul", bias)?
        ))
    }

    fn softmax_last(&self, x: &Layout) -> Result<Counted<Self>> {
        float_kernel!("softmax", self, |v: T| softmax::softmax_last::<T>(v, x))
    }

    fn layer_norm(
        &self,
        x: &Layout,
        weight: Option<View<'_, Self>>,
        bias: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>> {
        float_kernel!("layer_norm", self, |v: T| norm::layer_norm::<T>(
            v,
            x,
            opt::<T>("layer_norm", weight)?,
            opt::<T>("layer_norm", bias)?,
            eps as f32
        ))
    }

    fn add_layer_norm(
        &self,
        x: &Layout,
        residual: View<'_, Self>,
        weight: Option<View<'_, Self>>,
        bias: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>> {
        const OP: &str = "add_layer_norm";
        let (r, rl) = residual;
        float_kernel!(OP, self, |v: T| norm::add_layer_norm::<T>(
            v,
            x,
            r.as_slice::<T>(OP)?,
            rl,
            opt::<T>(OP, weight)?,
            opt::<T>(OP, bias)?,
            eps as f32
        ))
    }

    fn rms_norm(
        &self,
        x: &Layout,
        weight: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>> {
        float_kernel!("rms_norm", self, |v: T| norm::rms_norm::<T>(
            v,
            x,
            opt::<T>("rms_norm", weight)?,
            eps as f32
        ))
    }

    fn add_rms_norm(
        &self,
        x: &Layout,
        residual: View<'_, Self>,
        weight: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<(Self, Self)>> {
        const OP: &str = "add_rms_norm";
        let (r, rl) = residual;
        macro_rules! both {
            ($v:ident, $T:ty, $wrap:path) => {
                Ok(norm::add_rms_norm::<$T>(
                    $v,
                    x,
                    r.as_slice::<$T>(OP)?,
                    rl,
                    opt::<$T>(OP, weight)?,
                    eps as f32,
                )
                .map(|(sum, normed)| ($wrap(sum), $wrap(normed))))
            };
        }
        match self {
            CpuStorage::F32(v) => both!(v, f32, CpuStorage::F32),
            CpuStorage::F16(v) => both!(v, f16, CpuStorage::F16),
            CpuStorage::BF16(v) => both!(v, bf16, CpuStorage::BF16),
            other => Err(Error::UnsupportedDType {
                op: OP,
                dtype: other.dtype(),
            }),
        }
    }

    fn embedding(&self, table: &Layout, ids: View<'_, Self>) -> Result<Counted<Self>> {
        let (is, il) = ids;
        let wide = match is {
            CpuStorage::U32(v) => embedding::widen_ids(v, il)?,
            CpuStorage::I64(v) => embedding::widen_ids(v, il)?,
            other => {
                return Err(Error::UnsupportedDType {
                    op: "embedding ids",
                    dtype: other.dtype(),
                })
            }
        };
        let id_view = (il, is.dtype());
        float_kernel!("embedding", self, |v: T| embedding::embedding::<T>(
            v, table, &wide, id_view
        )?)
    }

    fn rope(
        &self,
        x: &Layout,
        cos: View<'_, Self>,
        sin: View<'_, Self>,
        style: RopeStyle,
    ) -> Result<Counted<Self>> {
        float_kernel!("rope", self, |v: T| rope::rope::<T>(
            v,
            x,
            (cos.0.as_slice::<T>("rope")?, cos.1),
            (sin.0.as_slice::<T>("rope")?, sin.1),
            style
        ))
    }

    fn copy_contiguous(&self, x: &Layout) -> Result<Counted<Self>> {
        Ok(match self {
            CpuStorage::F32(v) => copy::copy(v, x).map(CpuStorage::F32),
            CpuStorage::F16(v) => copy::copy(v, x).map(CpuStorage::F16),
            CpuStorage::BF16(v) => copy::copy(v, x).map(CpuStorage::BF16),
            CpuStorage::I64(v) => copy::copy(v, x).map(CpuStorage::I64),
            CpuStorage::U32(v) => copy::copy(v, x).map(CpuStorage::U32),
        })
    }

    fn concat(parts: &[View<'_, Self>], dim: usize) -> Result<Counted<Self>> {
        fn typed<T: crate::CpuElem>(
            parts: &[View<'_, CpuStorage>],
            dim: usize,
        ) -> Result<Counted<CpuStorage>> {
            let views = parts
                .iter()
                .map(|(s, l)| Ok((s.as_slice::<T>("concat")?, *l)))
                .collect::<Result<Vec<_>>>()?;
            Ok(copy::concat(&views, dim).map(CpuStorage::from_vec))
        }
        match parts.first().map(|p| p.0.dtype()) {
            Some(DType::F32) => typed::<f32>(parts, dim),
            Some(DType::F16) => typed::<f16>(parts, dim),
            Some(DType::BF16) => typed::<bf16>(parts, dim),
            Some(DType::I64) => typed::<i64>(parts, dim),
            Some(DType::U32) => typed::<u32>(parts, dim),
            None => Err(Error::invalid("concat", "no tensors to concatenate")),
        }
    }

    fn write_slice(
        &mut self,
        dst: &Layout,
        dim: usize,
        start: usize,
        src: View<'_, Self>,
    ) -> Result<Counted<()>> {
        fn typed<T: crate::CpuElem>(
            d: &mut CpuStorage,
            dl: &Layout,
            dim: usize,
            start: usize,
            (s, sl): View<'_, CpuStorage>,
        ) -> Result<tally_core::Work> {
            const OP: &str = "write_slice";
            let sv = s.as_slice::<T>(OP)?;
            let lhs = d.dtype();
            let dv = T::unwrap_mut(d).ok_or(Error::DTypeMismatch {
                op: OP,
                lhs,
                rhs: T::DTYPE,
            })?;
            Ok(copy::write_slice(dv, dl.dims(), dim, start, sv, sl))
        }
        let work = match self.dtype() {
            DType::F32 => typed::<f32>(self, dst, dim, start, src),
            DType::F16 => typed::<f16>(self, dst, dim, start, src),
            DType::BF16 => typed::<bf16>(self, dst, dim, start, src),
            DType::I64 => typed::<i64>(self, dst, dim, start, src),
            DType::U32 => typed::<u32>(self, dst, dim, start, src),
        }?;
        Ok(Counted::executed((), work))
    }

    fn cast(&self, x: &Layout, dtype: DType) -> Result<Counted<Self>> {
        fn to<S: crate::CpuElem>(v: &[S], x: &Layout, dtype: DType) -> Counted<CpuStorage> {
            match dtype {
                DType::F32 => copy::cast::<S, f32>(v, x).map(CpuStorage::F32),
                DType::F16 => copy::cast::<S, f16>(v, x).map(CpuStorage::F16),
                DType::BF16 => copy::cast::<S, bf16>(v, x).map(CpuStorage::BF16),
                DType::I64 => copy::cast::<S, i64>(v, x).map(CpuStorage::I64),
                DType::U32 => copy::cast::<S, u32>(v, x).map(CpuStorage::U32),
            }
        }
        Ok(match self {
            CpuStorage::F32(v) => to(v, x, dtype),
            CpuStorage::F16(v) => to(v, x, dtype),
            CpuStorage::BF16(v) => to(v, x, dtype),
            CpuStorage::I64(v) => to(v, x, dtype),
            CpuStorage::U32(v) => to(v, x, dtype),
        })
    }

    fn reduce(&self, x: &Layout, dim: usize, op: ReduceOp) -> Result<Counted<Self>> {
        match self {
            CpuStorage::F32(v) => Ok(reduce::reduce(v, x, dim, op)),
            CpuStorage::F16(v) => Ok(reduce::reduce(v, x, dim, op)),
            CpuStorage::BF16(v) => Ok(reduce::reduce(v, x, dim, op)),
            other => Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: other.dtype(),
            }),
        }
    }

    fn conv2d(
        &self,
        x: &Layout,
        weight: View<'_, Self>,
        bias: Option<View<'_, Self>>,
        p: Conv2dParams,
    ) -> Result<Counted<Self>> {
        float_kernel!("conv2d", self, |v: T| conv::conv2d::<T>(
            v,
            x,
            (weight.0.as_slice::<T>("conv2d")?, weight.1),
            opt::<T>("conv2d", bias)?,
            p
        ))
    }

    fn pool2d(&self, x: &Layout, p: Pool2dParams) -> Result<Counted<Self>> {
        float_kernel!("pool2d", self, |v: T| pool::pool2d::<T>(v, x, p))
    }

    fn attention(
        &self,
        q: &Layout,
        k: View<'_, Self>,
        v: View<'_, Self>,
        mask: Option<View<'_, Self>>,
        p: AttentionParams,
    ) -> Result<Counted<Self>> {
        let mask = opt::<u32>("attention mask", mask)?;
        float_kernel!("attention", self, |qv: T| attention::attention::<T>(
            (qv, q),
            (k.0.as_slice::<T>("attention")?, k.1),
            (v.0.as_slice::<T>("attention")?, v.1),
            mask,
            p
        ))
    }
}
