//! [`BackendStorage`] for [`CudaStorage`]: each op launches Tally's kernels with a slot of the
//! device's counter arena and returns that slot as the work they tallied, read back when the
//! region's ledger is made (`Source::Executed`); matrix products and pointwise convolutions
//! go to cuBLAS ([`crate::gemm`], `Source::Launch`).

use tally_core::backend::{
    AttentionParams, BackendStorage, Conv2dParams, Pool2dParams, PoolKind, RopeStyle, View,
};
use tally_core::{BinaryOp, Counted, DType, Device, Error, Layout, ReduceOp, Result, UnaryOp};

use crate::counters::counted;
use crate::launch::{grid_stride, launch, per_row, suffix, BLOCK};
use crate::operands::{
    attention_operand, copy_into, dense, gather, narrow_ids, opt_ptr, row_broadcast, Dense,
};
use crate::CudaStorage;

/// `Conv2dParams` and geometry as `kernels/conv.cu`'s `TallyConv`.
#[repr(C)]
#[derive(Clone, Copy)]
struct ConvArgs {
    batch: u64,
    c_in: u64,
    c_out: u64,
    h_in: u64,
    w_in: u64,
    h_out: u64,
    w_out: u64,
    kh: u32,
    kw: u32,
    stride: u32,
    padding: u32,
    groups: u32,
    clamp_comparisons: u32,
    lo: f32,
    hi: f32,
}
// SAFETY: #[repr(C)] plain data laid out as `TallyConv`.
unsafe impl cudarc::driver::DeviceRepr for ConvArgs {}

/// Attention geometry and strides as `kernels/attention.cu`'s `TallyAttention`.
#[repr(C)]
#[derive(Clone, Copy)]
struct AttentionArgs {
    batch: u64,
    heads: u64,
    kv_heads: u64,
    q_len: u64,
    kv_len: u64,
    head_dim: u64,
    strides: [i64; 9],
    scale: f32,
    causal: u32,
}
// SAFETY: #[repr(C)] plain data laid out as `TallyAttention`.
unsafe impl cudarc::driver::DeviceRepr for AttentionArgs {}

/// Query rows per attention block and keys per tile (`ATT_ROWS`, `ATT_TILE`), and the
/// largest head dimension the kernel holds in registers (`ATT_MAX_D`).
const ATT_ROWS: usize = 8;
const ATT_TILE: usize = 32;
const ATT_MAX_D: usize = 128;

fn u32_arg(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::InvalidArgument {
        op,
        reason: format!("{what} = {v} does not fit the kernel's 32-bit parameter"),
    })
}

impl BackendStorage for CudaStorage {
    fn dtype(&self) -> DType {
        CudaStorage::dtype(self)
    }

    fn device(&self) -> Device {
        CudaStorage::device(self)
    }

    fn unary(&self, x: &Layout, op: UnaryOp) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let n = x.shape().elem_count();
        let name = format!("{}_{}", op.name(), suffix(op.name(), self.dtype())?);
        self.produce(op.name(), self.dtype(), n, |c, y| {
            let xd = dense(self, x, c)?;
            launch!(dev, "unary.cu", name, grid_stride(dev, n); xd.ptr, y, n as u64, c)
        })
    }

    fn affine(&self, x: &Layout, mul: f64, add: f64) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let n = x.shape().elem_count();
        let name = format!("affine_{}", suffix("affine", self.dtype())?);
        self.produce("affine", self.dtype(), n, |c, y| {
            let xd = dense(self, x, c)?;
            launch!(dev, "unary.cu", name, grid_stride(dev, n);
                    xd.ptr, y, n as u64, mul as f32, add as f32, c)
        })
    }

    fn binary(&self, a: &Layout, rhs: &Self, b: &Layout, op: BinaryOp) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let n = a.shape().elem_count();
        let sfx = suffix(op.name(), self.dtype())?;
        self.produce(op.name(), self.dtype(), n, |c, y| {
            let ad = dense(self, a, c)?;
            match row_broadcast(b).filter(|_| !b.is_contiguous()) {
                Some(cols) => launch!(dev, "binary.cu", format!("{}_bcast_{sfx}", op.name()),
                    grid_stride(dev, n);
                    ad.ptr, rhs.ptr(b.offset()), y, (n / cols) as u64, cols as u64, c),
                None => {
                    let bd = dense(rhs, b, c)?;
                    launch!(dev, "binary.cu", format!("{}_{sfx}", op.name()), grid_stride(dev, n);
                        ad.ptr, bd.ptr, y, n as u64, c)
                }
            }
        })
    }

    fn matmul(
        &self,
        a: &Layout,
        rhs: &Self,
        b: &Layout,
        bias: Option<View<'_, Self>>,
    ) -> Result<Counted<Self>> {
        crate::gemm::matmul(self, a, rhs, b, bias)
    }

    fn softmax_last(&self, x: &Layout) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let total = x.shape().elem_count();
        let n = x.dims().last().copied().unwrap_or(1);
        let name = format!("softmax_{}", suffix("softmax", self.dtype())?);
        self.produce("softmax", self.dtype(), total, |c, y| {
            let xd = dense(self, x, c)?;
            launch!(dev, "softmax.cu", name, per_row("softmax", total / n)?; xd.ptr, y, n as u64, c)
        })
    }

    fn layer_norm(
        &self,
        x: &Layout,
        weight: Option<View<'_, Self>>,
        bias: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let total = x.shape().elem_count();
        let n = x.dims().last().copied().unwrap_or(1);
        let name = format!("layer_norm_{}", suffix("layer_norm", self.dtype())?);
        self.produce("layer_norm", self.dtype(), total, |c, y| {
            let xd = dense(self, x, c)?;
            let wd = weight.map(|(s, l)| dense(s, l, c)).transpose()?;
            let bd = bias.map(|(s, l)| dense(s, l, c)).transpose()?;
            launch!(dev, "norm.cu", name, per_row("layer_norm", total / n)?;
                xd.ptr, opt_ptr(&wd), opt_ptr(&bd), y, n as u64, eps as f32, c)
        })
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
        let dev = self.cuda_device();
        let total = x.shape().elem_count();
        let n = x.dims().last().copied().unwrap_or(1);
        let name = format!("add_layer_norm_{}", suffix(OP, self.dtype())?);
        self.produce(OP, self.dtype(), total, |c, y| {
            let xd = dense(self, x, c)?;
            let rd = dense(residual.0, residual.1, c)?;
            let wd = weight.map(|(s, l)| dense(s, l, c)).transpose()?;
            let bd = bias.map(|(s, l)| dense(s, l, c)).transpose()?;
            launch!(dev, "norm.cu", name, per_row(OP, total / n)?;
                xd.ptr, rd.ptr, opt_ptr(&wd), opt_ptr(&bd), y, n as u64, eps as f32, c)
        })
    }

    fn rms_norm(
        &self,
        x: &Layout,
        weight: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let total = x.shape().elem_count();
        let n = x.dims().last().copied().unwrap_or(1);
        let name = format!("rms_norm_{}", suffix("rms_norm", self.dtype())?);
        self.produce("rms_norm", self.dtype(), total, |c, y| {
            let xd = dense(self, x, c)?;
            let wd = weight.map(|(s, l)| dense(s, l, c)).transpose()?;
            launch!(dev, "norm.cu", name, per_row("rms_norm", total / n)?;
                xd.ptr, opt_ptr(&wd), y, n as u64, eps as f32, c)
        })
    }

    fn add_rms_norm(
        &self,
        x: &Layout,
        residual: View<'_, Self>,
        weight: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<(Self, Self)>> {
        const OP: &str = "add_rms_norm";
        let dev = self.cuda_device();
        let total = x.shape().elem_count();
        let n = x.dims().last().copied().unwrap_or(1);
        let name = format!("add_rms_norm_{}", suffix(OP, self.dtype())?);
        let mut sum = CudaStorage::alloc(dev, self.dtype(), total)?;
        let mut normed = CudaStorage::alloc(dev, self.dtype(), total)?;
        let (s, y) = (sum.ptr_mut(0), normed.ptr_mut(0));
        let pending = counted(dev, OP, |c| {
            if total == 0 {
                return Ok(());
            }
            let xd = dense(self, x, c)?;
            let rd = dense(residual.0, residual.1, c)?;
            let wd = weight.map(|(w, l)| dense(w, l, c)).transpose()?;
            launch!(dev, "norm.cu", name, per_row(OP, total / n)?;
                xd.ptr, rd.ptr, opt_ptr(&wd), s, y, n as u64, eps as f32, c)
        })?;
        Ok(Counted::deferred((sum, normed), pending))
    }

    fn embedding(&self, table: &Layout, ids: View<'_, Self>) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let (is, il) = ids;
        let (vocab, dim) = (table.dims()[0], table.dims()[1]);
        let n_ids = il.shape().elem_count();
        let name = format!("embedding_{}", suffix("embedding", self.dtype())?);
        // i64 ids are narrowed to u32 through the host, as the CPU backend narrows them.
        let narrowed = match is.dtype() {
            DType::U32 => None,
            DType::I64 => Some(narrow_ids(is, il)?),
            other => {
                return Err(Error::UnsupportedDType {
                    op: "embedding ids",
                    dtype: other,
                })
            }
        };
        self.produce("embedding", self.dtype(), n_ids * dim, |c, y| {
            let idd = match &narrowed {
                Some(s) => Dense::borrowed(s.ptr(0)),
                None => dense(is, il, c)?,
            };
            let td = dense(self, table, c)?;
            launch!(dev, "embedding.cu", name, per_row("embedding", n_ids)?;
                idd.ptr, td.ptr, y, vocab as u64, dim as u64, c)
        })
    }

    fn rope(
        &self,
        x: &Layout,
        cos: View<'_, Self>,
        sin: View<'_, Self>,
        style: RopeStyle,
    ) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let total = x.shape().elem_count();
        let r = x.dims().len();
        let (s, d) = (x.dims()[r - 2], x.dims()[r - 1]);
        let stem = match style {
            RopeStyle::Interleaved => "rope_interleaved",
            RopeStyle::Half => "rope_half",
        };
        let name = format!("{stem}_{}", suffix("rope", self.dtype())?);
        self.produce("rope", self.dtype(), total, |c, y| {
            let xd = dense(self, x, c)?;
            let cd = dense(cos.0, cos.1, c)?;
            let sd = dense(sin.0, sin.1, c)?;
            launch!(dev, "rope.cu", name, grid_stride(dev, total / 2);
                xd.ptr, cd.ptr, sd.ptr, y, (total / (s * d)) as u64, s as u64, d as u64, c)
        })
    }

    fn copy_contiguous(&self, x: &Layout) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let mut out = None;
        let pending = counted(dev, "copy", |c| {
            out = Some(gather(self, x, c)?);
            Ok(())
        })?;
        Ok(Counted::deferred(out.expect("set by the region"), pending))
    }

    fn concat(parts: &[View<'_, Self>], dim: usize) -> Result<Counted<Self>> {
        let (first, fl) = parts.first().ok_or_else(|| Error::InvalidArgument {
            op: "concat",
            reason: "no tensors to concatenate".into(),
        })?;
        let dev = first.cuda_device();
        let mut dims = fl.dims().to_vec();
        dims[dim] = parts.iter().map(|(_, l)| l.dims()[dim]).sum();
        let out_shape: tally_core::Shape = dims.clone().into();
        let full = Layout::contiguous(out_shape.clone());
        let mut out = CudaStorage::alloc(dev, first.dtype(), out_shape.elem_count())?;
        let pending = counted(dev, "concat", |c| {
            let mut at = 0;
            for (s, l) in parts {
                let len = l.dims()[dim];
                let dst = full.narrow(dim, at, len)?;
                copy_into(s, l, &mut out, &dst, c)?;
                at += len;
            }
            Ok(())
        })?;
        Ok(Counted::deferred(out, pending))
    }

    fn write_slice(
        &mut self,
        dst: &Layout,
        dim: usize,
        start: usize,
        src: View<'_, Self>,
    ) -> Result<Counted<()>> {
        let dev = self.cuda_device().clone();
        let target = dst.narrow(dim, start, src.1.dims()[dim])?;
        let pending = counted(&dev, "write_slice", |c| {
            copy_into(src.0, src.1, self, &target, c)
        })?;
        Ok(Counted::deferred((), pending))
    }

    fn cast(&self, x: &Layout, dtype: DType) -> Result<Counted<Self>> {
        if dtype == self.dtype() {
            return self.copy_contiguous(x);
        }
        let dev = self.cuda_device();
        let n = x.shape().elem_count();
        let from = match self.dtype() {
            DType::U32 => "u32",
            other => suffix("cast", other)?,
        };
        let name = format!("cast_{from}_{}", suffix("cast", dtype)?);
        self.produce("cast", dtype, n, |c, y| {
            let xd = dense(self, x, c)?;
            launch!(dev, "copy.cu", name, grid_stride(dev, n); xd.ptr, y, n as u64, c)
        })
    }

    fn reduce(&self, x: &Layout, dim: usize, op: ReduceOp) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let dims = x.dims();
        let n = dims[dim];
        let outer: usize = dims[..dim].iter().product();
        let inner: usize = dims[dim + 1..].iter().product();
        let sfx = suffix(op.name(), self.dtype())?;
        let out_dtype = if op == ReduceOp::Argmax {
            DType::U32
        } else {
            self.dtype()
        };
        self.produce(op.name(), out_dtype, outer * inner, |c, y| {
            let xd = dense(self, x, c)?;
            if inner == 1 {
                launch!(dev, "reduce.cu", format!("{}_rows_{sfx}", op.name()),
                    per_row(op.name(), outer)?; xd.ptr, y, n as u64, c)
            } else {
                launch!(dev, "reduce.cu", format!("{}_cols_{sfx}", op.name()),
                    grid_stride(dev, outer * inner);
                    xd.ptr, y, outer as u64, n as u64, inner as u64, c)
            }
        })
    }

    fn conv2d(
        &self,
        x: &Layout,
        weight: View<'_, Self>,
        bias: Option<View<'_, Self>>,
        p: Conv2dParams,
    ) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let (xd, wdims) = (x.dims(), weight.1.dims());
        let (kh, kw) = (wdims[2], wdims[3]);
        let h_out = (xd[2] + 2 * p.padding - kh) / p.stride + 1;
        let w_out = (xd[3] + 2 * p.padding - kw) / p.stride + 1;
        let (lo, hi) = p
            .activation
            .bounds()
            .unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let args = ConvArgs {
            batch: xd[0] as u64,
            c_in: xd[1] as u64,
            c_out: wdims[0] as u64,
            h_in: xd[2] as u64,
            w_in: xd[3] as u64,
            h_out: h_out as u64,
            w_out: w_out as u64,
            kh: u32_arg("conv2d", "kh", kh)?,
            kw: u32_arg("conv2d", "kw", kw)?,
            stride: u32_arg("conv2d", "stride", p.stride)?,
            padding: u32_arg("conv2d", "padding", p.padding)?,
            groups: u32_arg("conv2d", "groups", p.groups)?,
            clamp_comparisons: p.activation.comparisons() as u32,
            lo,
            hi,
        };
        let n = xd[0] * wdims[0] * h_out * w_out;
        let name = format!("conv2d_{}", suffix("conv2d", self.dtype())?);
        if kh == 1 && kw == 1 && p.stride == 1 && p.padding == 0 && p.groups == 1 && n > 0 {
            let out = CudaStorage::alloc(dev, self.dtype(), n)?;
            return self.conv1x1(x, weight, bias, p, out);
        }
        self.produce("conv2d", self.dtype(), n, |c, y| {
            let xg = dense(self, x, c)?;
            let wg = dense(weight.0, weight.1, c)?;
            let bg = bias.map(|(s, l)| dense(s, l, c)).transpose()?;
            launch!(dev, "conv.cu", name, grid_stride(dev, n);
                xg.ptr, wg.ptr, opt_ptr(&bg), y, args, c)
        })
    }

    fn pool2d(&self, x: &Layout, p: Pool2dParams) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let d = x.dims();
        let (planes, h, w) = (d[0] * d[1], d[2], d[3]);
        let n = planes * ((h - p.kernel) / p.stride + 1) * ((w - p.kernel) / p.stride + 1);
        let stem = match p.kind {
            PoolKind::Max => "max_pool2d",
            PoolKind::Avg => "avg_pool2d",
        };
        let name = format!("{stem}_{}", suffix(stem, self.dtype())?);
        let (kernel, stride) = (
            u32_arg(stem, "kernel", p.kernel)?,
            u32_arg(stem, "stride", p.stride)?,
        );
        self.produce(stem, self.dtype(), n, |c, y| {
            let xg = dense(self, x, c)?;
            launch!(dev, "pool.cu", name, grid_stride(dev, n);
                xg.ptr, y, planes as u64, h as u64, w as u64, kernel, stride, c)
        })
    }

    fn attention(
        &self,
        q: &Layout,
        k: View<'_, Self>,
        v: View<'_, Self>,
        mask: Option<View<'_, Self>>,
        p: AttentionParams,
    ) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let (qd, kd) = (q.dims(), k.1.dims());
        let (b, h, sq, d) = (qd[0], qd[1], qd[2], qd[3]);
        let (hk, sk) = (kd[1], kd[2]);
        if d > ATT_MAX_D {
            return Err(Error::InvalidArgument {
                op: "attention",
                reason: format!("head dim {d}: the CUDA kernel holds at most {ATT_MAX_D}"),
            });
        }
        if let Some((m, _)) = mask {
            if m.dtype() != DType::U32 {
                return Err(Error::UnsupportedDType {
                    op: "attention mask",
                    dtype: m.dtype(),
                });
            }
        }
        let name = format!("attention_{}", suffix("attention", self.dtype())?);
        let n = b * h * sq * d;
        self.produce("attention", self.dtype(), n, |c, y| {
            let (qg, qs) = attention_operand(self, q, c)?;
            let (kg, ks) = attention_operand(k.0, k.1, c)?;
            let (vg, vs) = attention_operand(v.0, v.1, c)?;
            let mg = mask.map(|(s, l)| dense(s, l, c)).transpose()?;
            let args = AttentionArgs {
                batch: b as u64,
                heads: h as u64,
                kv_heads: hk as u64,
                q_len: sq as u64,
                kv_len: sk as u64,
                head_dim: d as u64,
                strides: [
                    qs[0], qs[1], qs[2], ks[0], ks[1], ks[2], vs[0], vs[1], vs[2],
                ],
                scale: p.scale,
                causal: p.causal as u32,
            };
            let cfg = cudarc::driver::LaunchConfig {
                grid_dim: (
                    u32_arg("attention", "query blocks", sq.div_ceil(ATT_ROWS))?,
                    u32_arg("attention", "batch × heads", b * h)?.min(65_535),
                    1,
                ),
                block_dim: (BLOCK.min(32 * ATT_ROWS as u32), 1, 1),
                shared_mem_bytes: ((ATT_TILE * (2 * d + 1) + ATT_ROWS * d) * 4) as u32,
            };
            if b * h > 65_535 {
                return Err(Error::InvalidArgument {
                    op: "attention",
                    reason: format!("batch × heads = {}: the grid's y side holds 65535", b * h),
                });
            }
            launch!(dev, "attention.cu", name, cfg;
                qg.ptr, kg.ptr, vg.ptr, opt_ptr(&mg), y, args, c)
        })
    }
}

impl CudaStorage {
    /// A new output of `n` elements of `dtype` on this storage's device, written by
    /// `launches` (given the counter slot's address and the output's) as one counted op;
    /// nothing is launched for an empty output.
    fn produce(
        &self,
        op: &str,
        dtype: DType,
        n: usize,
        launches: impl FnOnce(u64, u64) -> Result<()>,
    ) -> Result<Counted<Self>> {
        let dev = self.cuda_device();
        let mut out = CudaStorage::alloc(dev, dtype, n)?;
        let y = out.ptr_mut(0);
        let pending = counted(dev, op, |c| if n == 0 { Ok(()) } else { launches(c, y) })?;
        Ok(Counted::deferred(out, pending))
    }

    /// A pointwise convolution on cuBLAS ([`crate::gemm::conv1x1`]), counted at launch from
    /// its shape as the tensor layer's analytic count has it.
    fn conv1x1(
        &self,
        x: &Layout,
        weight: View<'_, Self>,
        bias: Option<View<'_, Self>>,
        p: Conv2dParams,
        mut out: CudaStorage,
    ) -> Result<Counted<Self>> {
        let d = x.dims();
        let c_out = weight.1.dims()[0];
        let g = tally_core::cost::Conv2dGeometry {
            batch: d[0],
            c_in: d[1],
            c_out,
            h_in: d[2],
            w_in: d[3],
            kh: 1,
            kw: 1,
            stride: 1,
            padding: 0,
            groups: 1,
        };
        let mut work = tally_core::cost::conv2d(&g, bias.is_some(), self.dtype());
        work.add += p.activation.comparisons() * g.out_elems() as u64;
        let read =
            x.distinct_elems() + weight.1.distinct_elems() + if bias.is_some() { c_out } else { 0 };
        work.bytes_read = (read * self.dtype().size_in_bytes()) as u64;
        let dev = self.cuda_device().clone();
        let y = out.ptr_mut(0);
        let dtype = out.dtype();
        crate::counters::launched(&dev, out, work, || {
            let xg = dense(self, x, 0)?;
            let wg = dense(weight.0, weight.1, 0)?;
            crate::gemm::conv1x1(
                (xg.ptr, [d[0], d[1], d[2], d[3]]),
                wg.ptr,
                c_out,
                bias,
                p.activation,
                (y, dtype, &dev),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::{AttentionArgs, ConvArgs};
    use crate::launch::View4;

    /// The structs the kernels take by value, laid out as their C twins (whose sizes the
    /// kernel files pin with static_assert; the offsets follow C's rules for these fields).
    #[test]
    fn by_value_arguments_match_the_kernels_c_layouts() {
        assert_eq!(size_of::<ConvArgs>(), 88);
        assert_eq!(offset_of!(ConvArgs, kh), 56);
        assert_eq!(offset_of!(ConvArgs, clamp_comparisons), 76);
        assert_eq!(offset_of!(ConvArgs, lo), 80);
        assert_eq!(size_of::<AttentionArgs>(), 128);
        assert_eq!(offset_of!(AttentionArgs, strides), 48);
        assert_eq!(offset_of!(AttentionArgs, scale), 120);
        assert_eq!(offset_of!(AttentionArgs, causal), 124);
        assert_eq!(size_of::<View4>(), 64);
        assert_eq!(offset_of!(View4, strides), 32);
    }
}
