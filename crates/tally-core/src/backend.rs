//! The one interface a backend implements. Every method takes storages with their
//! layouts, checks nothing the dispatcher already checked (shapes, dtypes, devices),
//! and returns the new storage with the [`Work`](crate::Work) it performed.

use crate::{BinaryOp, Counted, DType, Device, Layout, ReduceOp, Result, UnaryOp};

/// How rotary embedding pairs elements of the last dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs `(x[2i], x[2i+1])` (GPT-J, llama.cpp).
    Interleaved,
    /// Pairs `(x[i], x[i + d/2])` (GPT-NeoX, Hugging Face Llama's `rotate_half`).
    Half,
}

/// Parameters of a 2-D convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Channel groups; `groups == c_in` is depthwise.
    pub groups: usize,
    /// A clamp applied to each output as it is stored (no second pass over the output).
    pub activation: ConvActivation,
}

/// A clamp a convolution applies to its outputs as it stores them. Its comparisons are
/// counted in the convolution's record, as the separate op would count them
/// (ReLU: 1 add-class comparison per output, ReLU6: 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvActivation {
    /// No clamp.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

impl ConvActivation {
    /// The clamp's bounds (lower, upper), or `None`.
    pub fn bounds(self) -> Option<(f32, f32)> {
        match self {
            ConvActivation::None => None,
            ConvActivation::Relu => Some((0.0, f32::INFINITY)),
            ConvActivation::Relu6 => Some((0.0, 6.0)),
        }
    }

    /// Comparisons per output (counted as adds, as [`crate::UnaryOp::Relu`] and
    /// [`crate::UnaryOp::Relu6`] count them).
    pub fn comparisons(self) -> u64 {
        match self {
            ConvActivation::None => 0,
            ConvActivation::Relu => 1,
            ConvActivation::Relu6 => 2,
        }
    }
}

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window.
    Max,
    /// Mean over the window.
    Avg,
}

/// Parameters of a 2-D pooling (no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Max or average.
    pub kind: PoolKind,
    /// Square window side.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
}

/// Parameters of scaled-dot-product attention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionParams {
    /// Multiplier of q·k (usually 1/√d).
    pub scale: f32,
    /// When true, query i (aligned to the end of the keys) sees keys j ≤ i + s_k − s_q.
    pub causal: bool,
}

/// A storage handle plus the layout through which it is read.
pub type View<'a, S> = (&'a S, &'a Layout);

/// A backend's storage and its kernels. Inputs arrive validated by the dispatcher
/// (`tally-tensor`): same dtype and device, shapes compatible, layouts in bounds.
pub trait BackendStorage: Sized {
    /// Element type of the buffer.
    fn dtype(&self) -> DType;
    /// Device the buffer lives on.
    fn device(&self) -> Device;

    /// Elementwise `op(x)`; output contiguous with `x`'s shape.
    fn unary(&self, x: &Layout, op: UnaryOp) -> Result<Counted<Self>>;
    /// Elementwise `mul·x + add`.
    fn affine(&self, x: &Layout, mul: f64, add: f64) -> Result<Counted<Self>>;
    /// Elementwise `op(a, b)`; both layouts already broadcast to the output shape.
    fn binary(&self, a: &Layout, rhs: &Self, b: &Layout, op: BinaryOp) -> Result<Counted<Self>>;
    /// Batched product (…, m, k)·(…, k, n) [+ bias (n)]; batch dims already broadcast.
    fn matmul(
        &self,
        a: &Layout,
        rhs: &Self,
        b: &Layout,
        bias: Option<View<'_, Self>>,
    ) -> Result<Counted<Self>>;
    /// Softmax over the last dimension.
    fn softmax_last(&self, x: &Layout) -> Result<Counted<Self>>;
    /// Layer norm over the last dimension.
    fn layer_norm(
        &self,
        x: &Layout,
        weight: Option<View<'_, Self>>,
        bias: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>>;
    /// RMS norm over the last dimension.
    fn rms_norm(
        &self,
        x: &Layout,
        weight: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>>;
    /// `x + residual` (the same shape, no broadcast) and the RMS norm of that sum over the
    /// last dimension, in one call: (sum, normalised), both contiguous. The sum is rounded
    /// to the dtype before it is normalised, as a separate add then norm would round it.
    fn add_rms_norm(
        &self,
        x: &Layout,
        residual: View<'_, Self>,
        weight: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<(Self, Self)>>;
    /// Layer norm over the last dimension of `x + residual` (the same shape, no
    /// broadcast), in one call: the normalised rows, contiguous. The sum is rounded to the
    /// dtype before it is normalised, as a separate add then norm would round it.
    fn add_layer_norm(
        &self,
        x: &Layout,
        residual: View<'_, Self>,
        weight: Option<View<'_, Self>>,
        bias: Option<View<'_, Self>>,
        eps: f64,
    ) -> Result<Counted<Self>>;
    /// Rows of this (v, d) table gathered by integer `ids` → (…ids, d).
    fn embedding(&self, table: &Layout, ids: View<'_, Self>) -> Result<Counted<Self>>;
    /// Rotary embedding of x (…, s, d) with cos/sin tables (s, d/2).
    fn rope(
        &self,
        x: &Layout,
        cos: View<'_, Self>,
        sin: View<'_, Self>,
        style: RopeStyle,
    ) -> Result<Counted<Self>>;
    /// The view copied into a new contiguous buffer.
    fn copy_contiguous(&self, x: &Layout) -> Result<Counted<Self>>;
    /// Views concatenated along `dim` into a new contiguous buffer.
    fn concat(parts: &[View<'_, Self>], dim: usize) -> Result<Counted<Self>>;
    /// `src` written in place into this buffer, seen as the contiguous `dst` from its first
    /// element, at positions `start..start + src.dims()[dim]` along `dim` (every other
    /// dimension equal); the rest of the buffer is untouched. The work: `src`'s distinct
    /// elements read and its elements written, bytes only.
    fn write_slice(
        &mut self,
        dst: &Layout,
        dim: usize,
        start: usize,
        src: View<'_, Self>,
    ) -> Result<Counted<()>>;
    /// The view converted to `dtype`, contiguous.
    fn cast(&self, x: &Layout, dtype: DType) -> Result<Counted<Self>>;
    /// A reduction over `dim`, which is kept with size 1.
    fn reduce(&self, x: &Layout, dim: usize, op: ReduceOp) -> Result<Counted<Self>>;
    /// NCHW convolution with an (c_out, c_in/groups, kh, kw) kernel.
    fn conv2d(
        &self,
        x: &Layout,
        weight: View<'_, Self>,
        bias: Option<View<'_, Self>>,
        p: Conv2dParams,
    ) -> Result<Counted<Self>>;
    /// NCHW pooling.
    fn pool2d(&self, x: &Layout, p: Pool2dParams) -> Result<Counted<Self>>;
    /// Attention of q (b, h, s_q, d) over k, v (b, h_kv, s_k, d); `mask` (b, s_k) u32,
    /// non-zero where a key may be attended.
    fn attention(
        &self,
        q: &Layout,
        k: View<'_, Self>,
        v: View<'_, Self>,
        mask: Option<View<'_, Self>>,
        p: AttentionParams,
    ) -> Result<Counted<Self>>;
}
