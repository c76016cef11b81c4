//! Copies, concatenation, dtype casts and reductions.

use tally_core::backend::{BackendStorage, View};
use tally_core::{cost, DType, Error, OpId, ReduceOp, Result, Shape};

use crate::dispatch::{on_backend, run, run_in_place, view, Backend};
use crate::{Storage, Tensor};

impl Tensor {
    /// This tensor if already contiguous, else a counted copy into a new buffer.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        self.copy()
    }

    /// A counted copy into a new contiguous buffer, even when already contiguous.
    pub fn copy(&self) -> Result<Tensor> {
        let analytic = cost::copy(self.elem_count(), self.dtype()).with_bytes(
            (self.layout().distinct_elems() * self.dtype().size_in_bytes()) as u64,
            (self.elem_count() * self.dtype().size_in_bytes()) as u64,
        );
        run(OpId::Copy, &[self], self.shape().clone(), analytic, || {
            on_backend!(self, |s: B| s.copy_contiguous(self.layout()))
        })
    }

    /// Tensors joined along `dim`; all other dimensions must agree.
    pub fn cat(parts: &[&Tensor], dim: usize) -> Result<Tensor> {
        const OP: &str = "concat";
        let first = parts
            .first()
            .ok_or_else(|| Error::invalid(OP, "no tensors to concatenate"))?;
        let rank = first.rank();
        if dim >= rank {
            return Err(Error::DimOutOfRange { op: OP, dim, rank });
        }
        let mut out = tally_core::shape::Dims::from_slice(first.dims());
        out[dim] = 0;
        for p in parts {
            first.same_kind(OP, p)?;
            let same_rest = p.rank() == rank
                && p.dims()
                    .iter()
                    .enumerate()
                    .all(|(i, &d)| i == dim || d == first.dims()[i]);
            if !same_rest {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: first.shape().clone(),
                    rhs: p.shape().clone(),
                });
            }
            out[dim] += p.dims()[dim];
        }
        let shape = Shape::new(out);
        let read: usize = parts.iter().map(|p| p.layout().distinct_elems()).sum();
        let size = first.dtype().size_in_bytes();
        let analytic = cost::copy(shape.elem_count(), first.dtype())
            .with_bytes((read * size) as u64, (shape.elem_count() * size) as u64);
        run(OpId::Concat, parts, shape, analytic, || {
            fn views<'a, B: Backend>(parts: &[&'a Tensor]) -> Result<Vec<View<'a, B>>> {
                parts.iter().map(|p| view::<B>("concat", p)).collect()
            }
            on_backend!(first, |_s: B| B::concat(&views::<B>(parts)?, dim))
        })
    }

    /// Writes `src` into this tensor in place at positions `start..start + src.dims()[dim]`
    /// along `dim` (every other dimension equal): an append into reserved room, such as a
    /// KV cache's. Recorded as a `concat` whose bytes are `src`'s elements read once and
    /// written once; the rest of this tensor is neither read nor written. This tensor must
    /// be a whole contiguous buffer (made by an op or [`Tensor::zeros`], not a view). When
    /// another tensor or view shares its storage, the storage is copied first (a counted
    /// `copy`), so the write is never seen through them.
    pub fn write_slice(&mut self, dim: usize, start: usize, src: &Tensor) -> Result<()> {
        const OP: &str = "write_slice";
        self.same_kind(OP, src)?;
        let rank = self.rank();
        if dim >= rank {
            return Err(Error::DimOutOfRange { op: OP, dim, rank });
        }
        let fits = src.rank() == rank
            && start + src.dims()[dim] <= self.dims()[dim]
            && (0..rank).all(|i| i == dim || src.dims()[i] == self.dims()[i]);
        if !fits {
            return Err(Error::shape(
                OP,
                src.shape(),
                format!("does not fit {} at {start} along dim {dim}", self.shape()),
            ));
        }
        let whole = self.layout().contiguous_range() == Some(0..self.elem_count())
            && self.storage().len() == self.elem_count();
        if !whole {
            return Err(Error::invalid(
                OP,
                format!(
                    "the destination {} must be a whole contiguous buffer, not a view",
                    self.shape()
                ),
            ));
        }
        if self.storage_mut().is_none() {
            *self = self.copy()?;
        }
        let n = src.elem_count();
        let size = src.dtype().size_in_bytes();
        let analytic = cost::copy(n, src.dtype()).with_bytes(
            (src.layout().distinct_elems() * size) as u64,
            (n * size) as u64,
        );
        let layout = self.layout().clone();
        let storage = self
            .storage_mut()
            .ok_or_else(|| Error::invalid(OP, "storage still shared after copying it"))?;
        run_in_place(
            OpId::Concat,
            &[src],
            src.shape().clone(),
            analytic,
            || match (storage, src.storage()) {
                (Storage::Cpu(d), Storage::Cpu(s)) => {
                    d.write_slice(&layout, dim, start, (s, src.layout()))
                }
                (Storage::Cuda(d), Storage::Cuda(s)) => {
                    d.write_slice(&layout, dim, start, (s, src.layout()))
                }
                (d, s) => Err(Error::DeviceMismatch {
                    op: OP,
                    lhs: d.device(),
                    rhs: s.device(),
                }),
            },
        )
    }

    /// The elements converted to `dtype` (a counted copy; a no-op for the same dtype).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let n = self.elem_count();
        let analytic = cost::cast(n, self.dtype(), dtype).with_bytes(
            (self.layout().distinct_elems() * self.dtype().size_in_bytes()) as u64,
            (n * dtype.size_in_bytes()) as u64,
        );
        run(OpId::Cast, &[self], self.shape().clone(), analytic, || {
            on_backend!(self, |s: B| s.cast(self.layout(), dtype))
        })
    }

    /// A reduction over `dim`; the dimension is kept with size 1 when `keepdim`.
    pub fn reduce(&self, dim: usize, op: ReduceOp, keepdim: bool) -> Result<Tensor> {
        self.float(op.name())?;
        let (outer, n, inner) = self.shape().split_at_dim(op.name(), dim)?;
        if n == 0 {
            return Err(Error::shape(
                op.name(),
                self.shape(),
                format!("dimension {dim} is empty"),
            ));
        }
        let mut dims = tally_core::shape::Dims::from_slice(self.dims());
        dims[dim] = 1;
        let analytic = cost::reduce(op, outer * inner, n, self.dtype()).with_bytes(
            (self.layout().distinct_elems() * self.dtype().size_in_bytes()) as u64,
            cost::reduce(op, outer * inner, n, self.dtype()).bytes_written,
        );
        let out = run(op.id(), &[self], Shape::new(dims), analytic, || {
            on_backend!(self, |s: B| s.reduce(self.layout(), dim, op))
        })?;
        if keepdim {
            Ok(out)
        } else {
            out.squeeze(dim)
        }
    }

    /// Σ over `dim`.
    pub fn sum(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.reduce(dim, ReduceOp::Sum, keepdim)
    }

    /// Mean over `dim`.
    pub fn mean(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.reduce(dim, ReduceOp::Mean, keepdim)
    }

    /// Maximum over `dim`.
    pub fn max(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.reduce(dim, ReduceOp::Max, keepdim)
    }

    /// Index (u32) of the first maximum over `dim`.
    pub fn argmax(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.reduce(dim, ReduceOp::Argmax, keepdim)
    }
}
