//! Neural-network ops: softmax, norms, embedding, rotary embedding, convolution,
//! pooling and attention.

use tally_core::backend::{
    AttentionParams, BackendStorage, Conv2dParams, Pool2dParams, PoolKind, RopeStyle,
};
use tally_core::cost::{self, AttentionGeometry, Conv2dGeometry};
use tally_core::{DType, Error, OpId, Result, Shape};

use crate::dispatch::{on_backend, opt_view, run, run_pair, view};
use crate::Tensor;

impl Tensor {
    /// Softmax over the last dimension.
    pub fn softmax_last(&self) -> Result<Tensor> {
        self.float("softmax")?;
        let n = self.shape().last();
        let rows = self.elem_count() / n.max(1);
        let analytic = cost::softmax(rows, n, self.dtype()).with_read(self.reads());
        run(
            OpId::Softmax,
            &[self],
            self.shape().clone(),
            analytic,
            || on_backend!(self, |s: B| s.softmax_last(self.layout())),
        )
    }

    fn check_param(&self, op: &'static str, p: Option<&Tensor>) -> Result<()> {
        if let Some(p) = p {
            self.same_kind(op, p)?;
            let n = self.shape().last();
            if p.dims() != [n] {
                return Err(Error::shape(
                    op,
                    p.shape(),
                    format!("expected ({n}) to match {}", self.shape()),
                ));
            }
        }
        Ok(())
    }

    /// Layer normalisation over the last dimension: (x − mean)/√(var + eps)·w + b.
    pub fn layer_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        self.layer_norm_with(None, weight, bias, eps)
    }

    /// Layer normalisation of `self + residual` over the last dimension, in one call and
    /// one record: what a post-norm block (BERT) does with its residual stream, where an
    /// `add` then [`Tensor::layer_norm`] would write the sum and read it back. The sum is
    /// rounded to the dtype before it is normalised, so the result equals those two ops'.
    /// `residual` must have this shape (no broadcasting).
    pub fn add_layer_norm(
        &self,
        residual: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        self.layer_norm_with(Some(residual), weight, bias, eps)
    }

    /// [`Tensor::layer_norm`], or [`Tensor::add_layer_norm`] when there is a residual.
    fn layer_norm_with(
        &self,
        residual: Option<&Tensor>,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        let op = if residual.is_some() {
            OpId::AddLayerNorm
        } else {
            OpId::LayerNorm
        };
        let name = op.name();
        self.float(name)?;
        if let Some(r) = residual {
            self.check_residual(name, r)?;
        }
        self.check_param(name, weight)?;
        self.check_param(name, bias)?;
        let n = self.shape().last();
        let rows = self.elem_count() / n.max(1);
        let (has_w, has_b, dtype) = (weight.is_some(), bias.is_some(), self.dtype());
        let params = weight.map_or(0, Tensor::reads) + bias.map_or(0, Tensor::reads);
        let analytic = match residual {
            Some(r) => cost::add_layer_norm(rows, n, has_w, has_b, dtype)
                .with_read(self.reads() + r.reads() + params),
            None => cost::layer_norm(rows, n, has_w, has_b, dtype).with_read(self.reads() + params),
        };
        let mut inputs: smallvec::SmallVec<[&Tensor; 3]> = smallvec::smallvec![self];
        inputs.extend(residual);
        inputs.extend(weight);
        inputs.extend(bias);
        run(op, &inputs, self.shape().clone(), analytic, || {
            on_backend!(self, |s: B| {
                let (w, b) = (opt_view::<B>(name, weight)?, opt_view::<B>(name, bias)?);
                match residual {
                    Some(r) => s.add_layer_norm(self.layout(), view::<B>(name, r)?, w, b, eps),
                    None => s.layer_norm(self.layout(), w, b, eps),
                }
            })
        })
    }

    /// Checks a residual for a fused add: a float tensor of this kind and this shape (no
    /// broadcasting), or an error naming `op` and both shapes.
    fn check_residual(&self, op: &'static str, residual: &Tensor) -> Result<()> {
        self.same_kind(op, residual)?;
        if residual.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().clone(),
                rhs: residual.shape().clone(),
            });
        }
        Ok(())
    }

    /// RMS normalisation over the last dimension: x/√(mean(x²) + eps)·w.
    pub fn rms_norm(&self, weight: Option<&Tensor>, eps: f64) -> Result<Tensor> {
        const OP: &str = "rms_norm";
        self.float(OP)?;
        self.check_param(OP, weight)?;
        let n = self.shape().last();
        let rows = self.elem_count() / n.max(1);
        let analytic = cost::rms_norm(rows, n, weight.is_some(), self.dtype())
            .with_read(self.reads() + weight.map_or(0, Tensor::reads));
        let mut inputs: smallvec::SmallVec<[&Tensor; 3]> = smallvec::smallvec![self];
        inputs.extend(weight);
        run(
            OpId::RmsNorm,
            &inputs,
            self.shape().clone(),
            analytic,
            || {
                on_backend!(self, |s: B| s.rms_norm(
                    self.layout(),
                    opt_view::<B>("rms_norm", weight)?,
                    eps
                ))
            },
        )
    }

    /// `self + residual` and the RMS normalisation of that sum over the last dimension
    /// (x/√(mean(x²) + eps)·w), in one call and one record: (sum, normalised). The sum is
    /// rounded to the dtype before it is normalised, so both equal what `add` then
    /// `rms_norm` give; what a pre-norm block does between its residual stream and its
    /// next normalisation. `residual` must have this shape (no broadcasting).
    pub fn add_rms_norm(
        &self,
        residual: &Tensor,
        weight: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "add_rms_norm";
        self.float(OP)?;
        self.check_residual(OP, residual)?;
        self.check_param(OP, weight)?;
        let n = self.shape().last();
        let rows = self.elem_count() / n.max(1);
        let analytic = cost::add_rms_norm(rows, n, weight.is_some(), self.dtype())
            .with_read(self.reads() + residual.reads() + weight.map_or(0, Tensor::reads));
        let mut inputs: smallvec::SmallVec<[&Tensor; 3]> = smallvec::smallvec![self, residual];
        inputs.extend(weight);
        run_pair(
            OpId::AddRmsNorm,
            &inputs,
            self.shape().clone(),
            analytic,
            || {
                on_backend!(pair self, |s: B| s.add_rms_norm(
                    self.layout(),
                    view::<B>(OP, residual)?,
                    opt_view::<B>(OP, weight)?,
                    eps
                ))
            },
        )
    }

    /// Rows of this (vocab, dim) table gathered by `ids` (u32 or i64) → (…ids, dim).
    /// An id past the table is an error naming it.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        const OP: &str = "embedding";
        self.float(OP)?;
        if self.rank() != 2 {
            return Err(Error::shape(OP, self.shape(), "table must be (vocab, dim)"));
        }
        if !matches!(ids.dtype(), DType::U32 | DType::I64) {
            return Err(Error::UnsupportedDType {
                op: OP,
                dtype: ids.dtype(),
            });
        }
        let dim = self.dims()[1];
        let mut out = ids.dims().to_vec();
        out.push(dim);
        let gathered = cost::embedding(ids.elem_count(), dim, ids.dtype(), self.dtype());
        let rows_read =
            gathered.bytes_read - (ids.elem_count() * ids.dtype().size_in_bytes()) as u64;
        let analytic = gathered.with_read(rows_read + ids.reads());
        run(
            OpId::Embedding,
            &[self, ids],
            Shape::new(out),
            analytic,
            || {
                on_backend!(self, |t: B| t
                    .embedding(self.layout(), view::<B>("embedding", ids)?))
            },
        )
    }

    /// Rotary embedding of x (…, s, d) with `cos`/`sin` tables (s, d/2).
    pub fn rope(&self, cos: &Tensor, sin: &Tensor, style: RopeStyle) -> Result<Tensor> {
        const OP: &str = "rope";
        self.float(OP)?;
        self.same_kind(OP, cos)?;
        self.same_kind(OP, sin)?;
        let r = self.rank();
        if r < 2 || !self.dims()[r - 1].is_multiple_of(2) {
            return Err(Error::shape(
                OP,
                self.shape(),
                "needs (…, seq, even head_dim)",
            ));
        }
        let (s, d) = (self.dims()[r - 2], self.dims()[r - 1]);
        for t in [cos, sin] {
            if t.dims() != [s, d / 2] {
                return Err(Error::shape(
                    OP,
                    t.shape(),
                    format!("cos/sin must be ({s}, {})", d / 2),
                ));
            }
        }
        let analytic = cost::rope(self.elem_count(), s * d / 2, self.dtype())
            .with_read(self.reads() + cos.reads() + sin.reads());
        run(
            OpId::Rope,
            &[self, cos, sin],
            self.shape().clone(),
            analytic,
            || {
                on_backend!(self, |x: B| x.rope(
                    self.layout(),
                    view::<B>("rope", cos)?,
                    view::<B>("rope", sin)?,
                    style
                ))
            },
        )
    }

    /// 2-D convolution of NCHW input with an (c_out, c_in/groups, kh, kw) kernel.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d";
        self.float(OP)?;
        self.same_kind(OP, weight)?;
        if self.rank() != 4 {
            return Err(Error::shape(OP, self.shape(), "input must be (n, c, h, w)"));
        }
        if weight.rank() != 4 {
            return Err(Error::shape(
                OP,
                weight.shape(),
                "kernel must be (c_out, c_in/groups, kh, kw)",
            ));
        }
        let (n, c_in, h, w) = (
            self.dims()[0],
            self.dims()[1],
            self.dims()[2],
            self.dims()[3],
        );
        let (c_out, c_per, kh, kw) = (
            weight.dims()[0],
            weight.dims()[1],
            weight.dims()[2],
            weight.dims()[3],
        );
        if p.groups == 0
            || p.stride == 0
            || c_in % p.groups != 0
            || c_out % p.groups != 0
            || c_per * p.groups != c_in
        {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: weight.shape().clone(),
            });
        }
        if h + 2 * p.padding < kh || w + 2 * p.padding < kw {
            return Err(Error::shape(
                OP,
                self.shape(),
                format!("smaller than the {kh}x{kw} kernel"),
            ));
        }
        if let Some(b) = bias {
            self.same_kind(OP, b)?;
            if b.dims() != [c_out] {
                return Err(Error::shape(
                    OP,
                    b.shape(),
                    format!("bias must be ({c_out})"),
                ));
            }
        }
        let g = Conv2dGeometry {
            batch: n,
            c_in,
            c_out,
            h_in: h,
            w_in: w,
            kh,
            kw,
            stride: p.stride,
            padding: p.padding,
            groups: p.groups,
        };
        // Bytes read: each distinct element of the (possibly broadcast) input and kernel once.
        let read = self.layout().distinct_elems()
            + weight.layout().distinct_elems()
            + if bias.is_some() { c_out } else { 0 };
        let mut dense = cost::conv2d(&g, bias.is_some(), self.dtype());
        // A fused clamp: its comparisons, counted as the separate op would count them.
        dense.add += p.activation.comparisons() * g.out_elems() as u64;
        let analytic = dense.with_bytes(
            (read * self.dtype().size_in_bytes()) as u64,
            dense.bytes_written,
        );
        let out = Shape::from([n, c_out, g.h_out(), g.w_out()]);
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        run(OpId::Conv2d, &inputs, out, analytic, || {
            on_backend!(self, |x: B| x.conv2d(
                self.layout(),
                view::<B>("conv2d", weight)?,
                opt_view::<B>("conv2d", bias)?,
                p
            ))
        })
    }

    /// 2-D max or average pooling of NCHW input (square window, no padding).
    pub fn pool2d(&self, p: Pool2dParams) -> Result<Tensor> {
        let op = match p.kind {
            PoolKind::Max => OpId::MaxPool2d,
            PoolKind::Avg => OpId::AvgPool2d,
        };
        self.float(op.name())?;
        if self.rank() != 4 {
            return Err(Error::shape(
                op.name(),
                self.shape(),
                "input must be (n, c, h, w)",
            ));
        }
        let (n, c, h, w) = (
            self.dims()[0],
            self.dims()[1],
            self.dims()[2],
            self.dims()[3],
        );
        if p.kernel == 0 || p.stride == 0 || h < p.kernel || w < p.kernel {
            return Err(Error::shape(
                op.name(),
                self.shape(),
                format!("cannot pool with kernel {} stride {}", p.kernel, p.stride),
            ));
        }
        let g = Conv2dGeometry {
            batch: n,
            c_in: c,
            c_out: c,
            h_in: h,
            w_in: w,
            kh: p.kernel,
            kw: p.kernel,
            stride: p.stride,
            padding: 0,
            groups: c,
        };
        let analytic =
            cost::pool2d(&g, p.kind == PoolKind::Avg, self.dtype()).with_read(self.reads());
        let out = Shape::from([n, c, g.h_out(), g.w_out()]);
        run(op, &[self], out, analytic, || {
            on_backend!(self, |s: B| s.pool2d(self.layout(), p))
        })
    }

    /// Scaled-dot-product attention: q (b, h, s_q, d) over k, v (b, h_kv, s_k, d) with
    /// h a multiple of h_kv (grouped-query). `mask` (b, s_k) u32 is non-zero where a key
    /// may be attended; masked keys and (when `causal`) future keys are skipped, and the
    /// record's work counts only the pairs computed, its analytic count the dense ones.
    pub fn attention(
        &self,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        p: AttentionParams,
    ) -> Result<Tensor> {
        const OP: &str = "attention";
        self.float(OP)?;
        self.same_kind(OP, k)?;
        self.same_kind(OP, v)?;
        if self.rank() != 4 || k.rank() != 4 || k.shape() != v.shape() {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: k.shape().clone(),
            });
        }
        let (b, h, sq, d) = (
            self.dims()[0],
            self.dims()[1],
            self.dims()[2],
            self.dims()[3],
        );
        let (bk, hk, sk, dk) = (k.dims()[0], k.dims()[1], k.dims()[2], k.dims()[3]);
        if b != bk || d != dk || hk == 0 || h % hk != 0 {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: k.shape().clone(),
            });
        }
        if let Some(m) = mask {
            if m.dtype() != DType::U32 {
                return Err(Error::UnsupportedDType {
                    op: "attention mask",
                    dtype: m.dtype(),
                });
            }
            if m.dims() != [b, sk] {
                return Err(Error::shape(
                    OP,
                    m.shape(),
                    format!("mask must be ({b}, {sk})"),
                ));
            }
        }
        let g = AttentionGeometry {
            batch: b,
            heads: h,
            kv_heads: hk,
            q_len: sq,
            kv_len: sk,
            head_dim: d,
        };
        let mask_elems = mask.map(|m| m.elem_count()).unwrap_or(0);
        let analytic = cost::attention_dense(&g, mask_elems, self.dtype());
        let mut inputs: smallvec::SmallVec<[&Tensor; 4]> = smallvec::smallvec![self, k, v];
        inputs.extend(mask);
        run(
            OpId::Attention,
            &inputs,
            self.shape().clone(),
            analytic,
            || {
                on_backend!(self, |qs: B| qs.attention(
                    self.layout(),
                    view::<B>("attention", k)?,
                    view::<B>("attention", v)?,
                    opt_view::<B>("attention", mask)?,
                    p
                ))
            },
        )
    }
}
