//! Analytic cost of every op, written from `docs/FPO.md`. Kernels count what they
//! execute; tests hold those counts to these formulas, and ledgers report both.
//!
//! Conventions used throughout: a reduction of n terms costs n adds (accumulating
//! from the identity, as matmul's 2·m·n·k does); a comparison counts as an add;
//! bytes read are each distinct input element once, bytes written each output once.

use crate::{BinaryOp, DType, ReduceOp, UnaryOp, Work};

fn b(n: usize, dtype: DType) -> u64 {
    (n * dtype.size_in_bytes()) as u64
}

/// Per-element arithmetic of a unary function (no bytes).
pub fn unary_per_elem(op: UnaryOp) -> Work {
    let (add, mul, fma, special) = match op {
        UnaryOp::Neg => (0, 1, 0, 0),
        UnaryOp::Relu => (1, 0, 0, 0),
        // Two comparisons: against 0, then against 6.
        UnaryOp::Relu6 => (2, 0, 0, 0),
        // 0.5·x·(1 + erf(x·(1/√2))): 3 mul, 1 add, 1 erf.
        UnaryOp::GeluErf => (1, 3, 0, 1),
        // 0.5·x·(1 + tanh(c·x·(1 + 0.044715·x²))): 6 mul, 2 add, 1 tanh.
        UnaryOp::GeluTanh => (2, 6, 0, 1),
        // x·σ(x): 1 mul, 1 sigmoid.
        UnaryOp::Silu => (0, 1, 0, 1),
        UnaryOp::Sigmoid
        | UnaryOp::Tanh
        | UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Sqrt
        | UnaryOp::Recip => (0, 0, 0, 1),
    };
    Work {
        add,
        mul,
        fma,
        special,
        ..Work::ZERO
    }
}

/// A unary function over `n` elements read from a view of `distinct_in` elements.
pub fn unary(op: UnaryOp, n: usize, distinct_in: usize, dtype: DType) -> Work {
    unary_per_elem(op)
        .times(n as u64)
        .with_bytes(b(distinct_in, dtype), b(n, dtype))
}

/// a·x + b over `n` elements: one FMA each.
pub fn affine(n: usize, distinct_in: usize, dtype: DType) -> Work {
    Work {
        fma: n as u64,
        ..Work::ZERO
    }
    .with_bytes(b(distinct_in, dtype), b(n, dtype))
}

/// Per-element arithmetic of a binary function (no bytes).
pub fn binary_per_elem(op: BinaryOp) -> Work {
    let (add, mul, special) = match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Maximum | BinaryOp::Minimum => (1, 0, 0),
        BinaryOp::Mul => (0, 1, 0),
        BinaryOp::Div => (0, 0, 1),
        // a·σ(a)·b: silu's mul and sigmoid, then the product with b.
        BinaryOp::SiluMul => (0, 2, 1),
    };
    Work {
        add,
        mul,
        special,
        ..Work::ZERO
    }
}

/// A binary function producing `n` elements from views of `lhs`/`rhs` distinct elements.
pub fn binary(op: BinaryOp, n: usize, lhs: usize, rhs: usize, dtype: DType) -> Work {
    binary_per_elem(op)
        .times(n as u64)
        .with_bytes(b(lhs + rhs, dtype), b(n, dtype))
}

/// Batched matmul: `batch` products of (m,k)·(k,n), inputs of `a_elems`/`b_elems`
/// distinct elements, optional bias of n: batch·m·n·k FMAs plus batch·m·n bias adds.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    a_elems: usize,
    b_elems: usize,
    bias: bool,
    dtype: DType,
) -> Work {
    let out = batch * m * n;
    Work {
        fma: (out * k) as u64,
        add: if bias { out as u64 } else { 0 },
        ..Work::ZERO
    }
    .with_bytes(
        b(a_elems + b_elems + if bias { n } else { 0 }, dtype),
        b(out, dtype),
    )
}

/// Softmax of `rows` rows of length `n`: max (n adds), shift (n adds), exp (n),
/// sum (n adds), one reciprocal, scale (n muls).
pub fn softmax(rows: usize, n: usize, dtype: DType) -> Work {
    let r = rows as u64;
    let n64 = n as u64;
    Work {
        add: r * 3 * n64,
        mul: r * n64,
        special: r * (n64 + 1),
        ..Work::ZERO
    }
    .with_bytes(b(rows * n, dtype), b(rows * n, dtype))
}

/// Layer norm of `rows` rows of length `n`: mean (n adds, 1 mul), centre (n adds),
/// variance (n FMAs, 1 mul), +eps (1 add), rsqrt (1), normalise (n muls), then
/// n muls for a weight and n adds for a bias when present.
pub fn layer_norm(rows: usize, n: usize, weight: bool, bias: bool, dtype: DType) -> Work {
    let n64 = n as u64;
    let per_row = Work {
        add: 2 * n64 + 1 + if bias { n64 } else { 0 },
        mul: 2 + n64 + if weight { n64 } else { 0 },
        fma: n64,
        special: 1,
        ..Work::ZERO
    };
    let params = if weight { n } else { 0 } + if bias { n } else { 0 };
    per_row
        .times(rows as u64)
        .with_bytes(b(rows * n + params, dtype), b(rows * n, dtype))
}

/// RMS norm of `rows` rows of length `n`: Σx² (n FMAs), ×1/n (1 mul), +eps (1 add),
/// rsqrt (1), scale (n muls), then n muls for a weight when present.
pub fn rms_norm(rows: usize, n: usize, weight: bool, dtype: DType) -> Work {
    let n64 = n as u64;
    let per_row = Work {
        add: 1,
        mul: 1 + n64 + if weight { n64 } else { 0 },
        fma: n64,
        special: 1,
        ..Work::ZERO
    };
    per_row.times(rows as u64).with_bytes(
        b(rows * n + if weight { n } else { 0 }, dtype),
        b(rows * n, dtype),
    )
}

/// A residual add then RMS norm of the sum, as one op: `rows·n` adds and [`rms_norm`]'s
/// work over the sum. Read: both addends (and the weight); written: the sum and the
/// normalised rows (the norm's read of the sum it just wrote is not a second input).
pub fn add_rms_norm(rows: usize, n: usize, weight: bool, dtype: DType) -> Work {
    let norm = rms_norm(rows, n, weight, dtype);
    Work {
        add: norm.add + (rows * n) as u64,
        ..norm
    }
    .with_bytes(
        b(2 * rows * n + if weight { n } else { 0 }, dtype),
        b(2 * rows * n, dtype),
    )
}

/// A residual add then layer norm of the sum, as one op: `rows·n` adds and
/// [`layer_norm`]'s work over the sum. Read: both addends (and the weight and bias);
/// written: the normalised rows (the sum never leaves the kernel).
pub fn add_layer_norm(rows: usize, n: usize, weight: bool, bias: bool, dtype: DType) -> Work {
    let norm = layer_norm(rows, n, weight, bias, dtype);
    let params = if weight { n } else { 0 } + if bias { n } else { 0 };
    Work {
        add: norm.add + (rows * n) as u64,
        ..norm
    }
    .with_bytes(b(2 * rows * n + params, dtype), b(rows * n, dtype))
}

/// Gather of `ids` rows of width `dim`: no FPO; the ids and the gathered rows are read.
pub fn embedding(ids: usize, dim: usize, id_dtype: DType, dtype: DType) -> Work {
    Work::ZERO.with_bytes(b(ids, id_dtype) + b(ids * dim, dtype), b(ids * dim, dtype))
}

/// Rotary embedding of `n` elements (n/2 rotated pairs) with cos/sin tables of
/// `table` elements each: per pair 4 muls and 2 adds.
pub fn rope(n: usize, table: usize, dtype: DType) -> Work {
    let pairs = (n / 2) as u64;
    Work {
        mul: 4 * pairs,
        add: 2 * pairs,
        ..Work::ZERO
    }
    .with_bytes(b(n + 2 * table, dtype), b(n, dtype))
}

/// A copy of `n` elements (contiguous, concat): bytes only.
pub fn copy(n: usize, dtype: DType) -> Work {
    Work::ZERO.with_bytes(b(n, dtype), b(n, dtype))
}

/// A dtype conversion of `n` elements: bytes only, at each side's size.
pub fn cast(n: usize, from: DType, to: DType) -> Work {
    Work::ZERO.with_bytes(b(n, from), b(n, to))
}

/// A reduction of `outputs` groups of `n` elements: n adds (or comparisons) per
/// group, plus one mul per group for a mean. Argmax writes u32 indices.
pub fn reduce(op: ReduceOp, outputs: usize, n: usize, dtype: DType) -> Work {
    let o = outputs as u64;
    let w = Work {
        add: o * n as u64,
        mul: if op == ReduceOp::Mean { o } else { 0 },
        ..Work::ZERO
    };
    let out_dtype = if op == ReduceOp::Argmax {
        DType::U32
    } else {
        dtype
    };
    w.with_bytes(b(outputs * n, dtype), b(outputs, out_dtype))
}

/// The geometry of a 2-D convolution or pooling window over NCHW input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input height and width.
    pub h_in: usize,
    /// Input width.
    pub w_in: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (same in both directions).
    pub stride: usize,
    /// Zero padding on each side (same in both directions).
    pub padding: usize,
    /// Channel groups (c_in for depthwise).
    pub groups: usize,
}

impl Conv2dGeometry {
    /// Output height.
    pub fn h_out(&self) -> usize {
        (self.h_in + 2 * self.padding - self.kh) / self.stride + 1
    }

    /// Output width.
    pub fn w_out(&self) -> usize {
        (self.w_in + 2 * self.padding - self.kw) / self.stride + 1
    }

    /// Output elements.
    pub fn out_elems(&self) -> usize {
        self.batch * self.c_out * self.h_out() * self.w_out()
    }
}

/// Convolution: every output takes (c_in/groups)·kh·kw FMAs over the zero-padded
/// input (as PyTorch counts it), plus one add per output for a bias.
pub fn conv2d(g: &Conv2dGeometry, bias: bool, dtype: DType) -> Work {
    let out = g.out_elems();
    let per_out = (g.c_in / g.groups) * g.kh * g.kw;
    let input = g.batch * g.c_in * g.h_in * g.w_in;
    let weight = g.c_out * per_out;
    Work {
        fma: (out * per_out) as u64,
        add: if bias { out as u64 } else { 0 },
        ..Work::ZERO
    }
    .with_bytes(
        b(input + weight + if bias { g.c_out } else { 0 }, dtype),
        b(out, dtype),
    )
}

/// Pooling without padding: kh·kw comparisons (max) or adds (avg) per output,
/// plus one mul per output for avg.
pub fn pool2d(g: &Conv2dGeometry, avg: bool, dtype: DType) -> Work {
    let out = g.out_elems() as u64;
    let input = g.batch * g.c_in * g.h_in * g.w_in;
    Work {
        add: out * (g.kh * g.kw) as u64,
        mul: if avg { out } else { 0 },
        ..Work::ZERO
    }
    .with_bytes(b(input, dtype), b(out as usize, dtype))
}

/// The shape of a scaled-dot-product attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionGeometry {
    /// Batch size.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (≤ heads, dividing it: grouped-query attention).
    pub kv_heads: usize,
    /// Query length.
    pub q_len: usize,
    /// Key length.
    pub kv_len: usize,
    /// Head dimension.
    pub head_dim: usize,
}

/// Attention over `visible` (query, key) pairs: per pair d FMAs for q·k, 1 mul for the
/// scale, d FMAs for p·v, and the softmax's 3 adds, 1 mul and 1 exp; per query row that
/// sees at least one key, one reciprocal. `empty_rows` counts the query rows that see no
/// key (fully masked; their output is zeros). The dense count has `visible = b·h·s_q·s_k`
/// and no empty row.
pub fn attention_over(
    g: &AttentionGeometry,
    visible: u64,
    empty_rows: u64,
    mask_elems: usize,
    dtype: DType,
) -> Work {
    let d = g.head_dim as u64;
    let rows = (g.batch * g.heads * g.q_len) as u64 - empty_rows;
    let q = g.batch * g.heads * g.q_len * g.head_dim;
    let kv = g.batch * g.kv_heads * g.kv_len * g.head_dim;
    Work {
        fma: 2 * visible * d,
        mul: 2 * visible,
        add: 3 * visible,
        special: visible + rows,
        ..Work::ZERO
    }
    .with_bytes(
        b(q + 2 * kv, dtype) + (mask_elems * DType::U32.size_in_bytes()) as u64,
        b(q, dtype),
    )
}

/// The dense attention count: every query sees every key (what FlopCounterMode reports
/// for the two products: 2·b·h·s_q·s_k·d FPO each).
pub fn attention_dense(g: &AttentionGeometry, mask_elems: usize, dtype: DType) -> Work {
    let visible = (g.batch * g.heads * g.q_len * g.kv_len) as u64;
    attention_over(g, visible, 0, mask_elems, dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_is_two_mnk_plus_bias() {
        let w = matmul(2, 3, 4, 5, 2 * 15, 20, true, DType::F32);
        assert_eq!(w.fpo(), 2 * 2 * 3 * 4 * 5 + 2 * 3 * 4);
        assert_eq!(w.bytes_read, (30 + 20 + 4) * 4); // a, b (shared), bias
        assert_eq!(w.bytes_written, 2 * 3 * 4 * 4);
    }

    #[test]
    fn dense_attention_products_match_flop_counter() {
        let g = AttentionGeometry {
            batch: 2,
            heads: 4,
            kv_heads: 4,
            q_len: 8,
            kv_len: 8,
            head_dim: 16,
        };
        let w = attention_dense(&g, 0, DType::F32);
        // Two products of 2·b·h·s_q·s_k·d each.
        assert_eq!(2 * w.fma, 2 * (2 * 2 * 4 * 8 * 8 * 16));
    }
}
