//! The op set, named once. [`OpId`] is the table every report, test and kernel symbol
//! derives from; [`UnaryOp`], [`BinaryOp`] and [`ReduceOp`] are the families a backend
//! method takes, each mapping into [`OpId`].

use serde::{Deserialize, Serialize};

macro_rules! op_table {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal,)* }) => {
        $(#[$meta])*
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The snake_case name used in reports, JSON and CUDA kernel symbols.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $label,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.name())
            }
        }
    };
}

op_table! {
    /// Every op a Tally kernel implements. A record in a ledger carries one of these.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum OpId {
        /// Batched matrix product with optional fused bias: (…, m, k) · (…, k, n) [+ (n)].
        Matmul => "matmul",
        /// Elementwise a + b with broadcasting.
        Add => "add",
        /// Elementwise a − b with broadcasting.
        Sub => "sub",
        /// Elementwise a · b with broadcasting.
        Mul => "mul",
        /// Elementwise a / b with broadcasting.
        Div => "div",
        /// Elementwise max(a, b) with broadcasting.
        Maximum => "maximum",
        /// Elementwise min(a, b) with broadcasting.
        Minimum => "minimum",
        /// Elementwise silu(a)·b with broadcasting: the gate of a SwiGLU feed-forward in one
        /// pass (one call instead of a `silu` and a `mul`).
        SiluMul => "silu_mul",
        /// −x.
        Neg => "neg",
        /// max(x, 0).
        Relu => "relu",
        /// min(max(x, 0), 6): MobileNet's clamp, one pass.
        Relu6 => "relu6",
        /// x·Φ(x) with the exact erf: 0.5·x·(1 + erf(x/√2)).
        GeluErf => "gelu_erf",
        /// The tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
        GeluTanh => "gelu_tanh",
        /// x·σ(x).
        Silu => "silu",
        /// σ(x) = 1 / (1 + e^−x).
        Sigmoid => "sigmoid",
        /// tanh(x).
        Tanh => "tanh",
        /// eˣ.
        Exp => "exp",
        /// ln(x).
        Log => "log",
        /// √x.
        Sqrt => "sqrt",
        /// 1/x.
        Recip => "recip",
        /// a·x + b with scalar a, b.
        Affine => "affine",
        /// Softmax over the last dimension.
        Softmax => "softmax",
        /// Layer normalisation over the last dimension, optional weight and bias.
        LayerNorm => "layer_norm",
        /// RMS normalisation over the last dimension, optional weight.
        RmsNorm => "rms_norm",
        /// A residual add then RMS normalisation of the sum over the last dimension, one call
        /// with two outputs: the sum (the residual stream) and its normalised rows.
        AddRmsNorm => "add_rms_norm",
        /// A residual add then layer normalisation of the sum over the last dimension, one
        /// call with one output, the normalised rows (a post-norm block's residual stream).
        AddLayerNorm => "add_layer_norm",
        /// Row gather from a table by integer ids.
        Embedding => "embedding",
        /// Rotary position embedding over the last dimension.
        Rope => "rope",
        /// Concatenation along one dimension.
        Concat => "concat",
        /// A strided view copied into a contiguous buffer.
        Copy => "copy",
        /// Conversion between dtypes.
        Cast => "cast",
        /// Sum over one dimension.
        Sum => "sum",
        /// Mean over one dimension.
        Mean => "mean",
        /// Maximum over one dimension.
        Max => "max",
        /// Index of the maximum over one dimension.
        Argmax => "argmax",
        /// 2-D convolution (NCHW), with stride, padding and groups.
        Conv2d => "conv2d",
        /// 2-D max pooling (NCHW).
        MaxPool2d => "max_pool2d",
        /// 2-D average pooling (NCHW).
        AvgPool2d => "avg_pool2d",
        /// Scaled dot-product attention with optional causal and padding masks.
        Attention => "attention",
    }
}

impl OpId {
    /// True for the ops whose FMAs are matrix or convolution products: the only FPO that
    /// PyTorch's FlopCounterMode and fvcore count.
    pub fn is_contraction(self) -> bool {
        matches!(self, OpId::Matmul | OpId::Conv2d | OpId::Attention)
    }

    /// Parses a name printed by [`OpId::name`].
    pub fn parse(name: &str) -> Option<OpId> {
        OpId::ALL.iter().copied().find(|o| o.name() == name)
    }
}

op_table! {
    /// Elementwise functions of one tensor.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum UnaryOp {
        /// −x.
        Neg => "neg",
        /// max(x, 0).
        Relu => "relu",
        /// min(max(x, 0), 6).
        Relu6 => "relu6",
        /// Exact GELU.
        GeluErf => "gelu_erf",
        /// tanh-approximated GELU.
        GeluTanh => "gelu_tanh",
        /// x·σ(x).
        Silu => "silu",
        /// Logistic sigmoid.
        Sigmoid => "sigmoid",
        /// tanh(x).
        Tanh => "tanh",
        /// eˣ.
        Exp => "exp",
        /// ln(x).
        Log => "log",
        /// √x.
        Sqrt => "sqrt",
        /// 1/x.
        Recip => "recip",
    }
}

impl UnaryOp {
    /// The op id recorded for this function.
    pub fn id(self) -> OpId {
        match self {
            UnaryOp::Neg => OpId::Neg,
            UnaryOp::Relu => OpId::Relu,
            UnaryOp::Relu6 => OpId::Relu6,
            UnaryOp::GeluErf => OpId::GeluErf,
            UnaryOp::GeluTanh => OpId::GeluTanh,
            UnaryOp::Silu => OpId::Silu,
            UnaryOp::Sigmoid => OpId::Sigmoid,
            UnaryOp::Tanh => OpId::Tanh,
            UnaryOp::Exp => OpId::Exp,
            UnaryOp::Log => OpId::Log,
            UnaryOp::Sqrt => OpId::Sqrt,
            UnaryOp::Recip => OpId::Recip,
        }
    }
}

op_table! {
    /// Elementwise functions of two broadcast tensors.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BinaryOp {
        /// a + b.
        Add => "add",
        /// a − b.
        Sub => "sub",
        /// a · b.
        Mul => "mul",
        /// a / b.
        Div => "div",
        /// max(a, b).
        Maximum => "maximum",
        /// min(a, b).
        Minimum => "minimum",
        /// silu(a)·b = a·σ(a)·b.
        SiluMul => "silu_mul",
    }
}

impl BinaryOp {
    /// The op id recorded for this function.
    pub fn id(self) -> OpId {
        match self {
            BinaryOp::Add => OpId::Add,
            BinaryOp::Sub => OpId::Sub,
            BinaryOp::Mul => OpId::Mul,
            BinaryOp::Div => OpId::Div,
            BinaryOp::Maximum => OpId::Maximum,
            BinaryOp::Minimum => OpId::Minimum,
            BinaryOp::SiluMul => OpId::SiluMul,
        }
    }
}

op_table! {
    /// Reductions over one dimension.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ReduceOp {
        /// Σ.
        Sum => "sum",
        /// Σ / n.
        Mean => "mean",
        /// max.
        Max => "max",
        /// index of the first max, as u32.
        Argmax => "argmax",
    }
}

impl ReduceOp {
    /// The op id recorded for this reduction.
    pub fn id(self) -> OpId {
        match self {
            ReduceOp::Sum => OpId::Sum,
            ReduceOp::Mean => OpId::Mean,
            ReduceOp::Max => OpId::Max,
            ReduceOp::Argmax => OpId::Argmax,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_parse_back() {
        let names: HashSet<_> = OpId::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), OpId::ALL.len());
        for &op in OpId::ALL {
            assert_eq!(OpId::parse(op.name()), Some(op));
        }
    }

    #[test]
    fn families_map_into_op_ids_by_name() {
        for &u in UnaryOp::ALL {
            assert_eq!(u.id().name(), u.name());
        }
        for &b in BinaryOp::ALL {
            assert_eq!(b.id().name(), b.name());
        }
        for &r in ReduceOp::ALL {
            assert_eq!(r.id().name(), r.name());
        }
    }
}
