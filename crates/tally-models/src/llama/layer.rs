//! [`DecoderLayer`]: one pre-norm Llama decoder layer, grouped-query causal self-attention
//! with RoPE and a KV cache, then a SwiGLU feed-forward, each around a residual add; and
//! [`RopeRows`], the rotary tables one pass uses (shared, or one per batch row).

use tally_core::backend::{AttentionParams, RopeStyle};
use tally_core::{meter, scope, Result};
use tally_nn::{Linear, RmsNorm, WeightView};
use tally_tensor::Tensor;

use super::{KvCache, LlamaConfig};

/// The RoPE rows a forward pass rotates q and k with: cos and sin (s, d/2) pairs, either
/// one shared by every sequence (one rope call), or one per batch row for sequences at
/// different positions (decode steps of a right-padded batch).
#[derive(Clone, Debug)]
pub struct RopeRows {
    tables: Vec<(Tensor, Tensor)>,
}

impl RopeRows {
    /// One (cos, sin) pair (s, d/2) for every batch row.
    pub fn shared(cos: Tensor, sin: Tensor) -> RopeRows {
        RopeRows {
            tables: vec![(cos, sin)],
        }
    }

    /// One (cos, sin) pair (s, d/2) per batch row, in row order.
    pub fn per_row(tables: Vec<(Tensor, Tensor)>) -> RopeRows {
        RopeRows { tables }
    }

    /// Rotates x (b, heads, s, d) in llama.cpp's interleaved pairs. Per-row tables narrow
    /// row r to (1, heads, s, d), rope it with its own pair and concatenate the b results
    /// along the batch axis (the same rope FPO as one call, plus the concat's bytes).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if let [(cos, sin)] = self.tables.as_slice() {
            return x.rope(cos, sin, RopeStyle::Interleaved);
        }
        let parts = self
            .tables
            .iter()
            .enumerate()
            .map(|(r, (cos, sin))| x.narrow(0, r, 1)?.rope(cos, sin, RopeStyle::Interleaved))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0)
    }
}

/// `f` under the scope `layers.{index}.{part}`, the name formatted only while a region
/// records (a decode step makes no string otherwise).
fn in_scope<T>(index: usize, part: &str, f: impl FnOnce() -> T) -> T {
    if meter::is_recording() {
        scope(&format!("layers.{index}.{part}"), f)
    } else {
        f()
    }
}

/// The weights of `blk.{i}` (GGUF names under the view's prefix): `attn_norm`,
/// `attn_{q,k,v,output}`, `ffn_norm`, `ffn_{gate,up,down}`. The q and k rows are in
/// llama.cpp's interleaved-RoPE order (see the `gguf` module). q, k and v are stacked into
/// one projection, and gate and up into another, so each runs as one product over the
/// normalised input (the same FPO as three and two products; fewer, larger calls).
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    attn_norm: RmsNorm,
    /// q, k and v stacked: H → (h + 2·h_kv)·d.
    qkv: Linear,
    o: Linear,
    ffn_norm: RmsNorm,
    /// gate and up stacked: H → 2·I.
    gate_up: Linear,
    down: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl DecoderLayer {
    /// Loads one layer from `vb` (prefixed `blk.{i}`), as `vb.dtype()`.
    pub fn load(vb: &WeightView, c: &LlamaConfig) -> Result<DecoderLayer> {
        let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.rms_norm_eps);
        let (q, kv) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        // Weights (out, h) stacked along out, in order, into one layer.
        let stacked = |parts: &[(&str, usize)]| -> Result<Linear> {
            let ws = parts
                .iter()
                .map(|&(name, out)| vb.pp(name).get("weight", [out, h], vb.dtype()))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = ws.iter().collect();
            Linear::new(Tensor::cat(&refs, 0)?, None)
        };
        Ok(DecoderLayer {
            attn_norm: RmsNorm::load(&vb.pp("attn_norm"), h, eps)?,
            qkv: stacked(&[("attn_q", q), ("attn_k", kv), ("attn_v", kv)])?,
            o: Linear::load(&vb.pp("attn_output"), q, h, false)?,
            ffn_norm: RmsNorm::load(&vb.pp("ffn_norm"), h, eps)?,
            gate_up: stacked(&[("ffn_gate", i), ("ffn_up", i)])?,
            down: Linear::load(&vb.pp("ffn_down"), i, h, false)?,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
        })
    }

    /// Parameters of one layer: its matrix weights and two RMSNorm scales (H each).
    pub fn num_params(c: &LlamaConfig) -> usize {
        c.layer_matmul_params() as usize + 2 * c.hidden_size
    }

    /// The layer over the residual stream `x + delta` (b, s, H) (`delta`: the previous
    /// layer's feed-forward output, not yet added; `None` for the first layer), with `rope`
    /// the RoPE rows of the new positions and `mask` (b, past + s) u32 the key slots each
    /// sequence may see (non-zero = visible; `None`: all); the layer's keys and values are
    /// appended to `cache`. Returns (stream, delta) again, the layer's output being their
    /// sum: each residual add runs in the same call as the norm that reads its sum
    /// ([`RmsNorm::forward_residual`]), so a layer makes two calls fewer. Runs under the
    /// scopes `layers.{index}.attn` (the incoming add, its norm and attention) and
    /// `layers.{index}.mlp` (attention's add, its norm and the feed-forward).
    pub fn forward(
        &self,
        x: &Tensor,
        delta: Option<&Tensor>,
        rope: &RopeRows,
        mask: Option<&Tensor>,
        cache: &mut KvCache,
        index: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (x, attended) = in_scope(index, "attn", || {
            let (x, xn) = match delta {
                Some(d) => self.attn_norm.forward_residual(x, d)?,
                None => (x.clone(), self.attn_norm.forward(x)?),
            };
            let attended = self.attention(&xn, rope, mask, cache, index)?;
            Ok::<_, tally_core::Error>((x, attended))
        })?;
        in_scope(index, "mlp", || {
            let (x, xn) = self.ffn_norm.forward_residual(&x, &attended)?;
            Ok((x, self.mlp(&xn)?))
        })
    }

    /// o(softmax(q·kᵀ/√d, causal)·v) of the normalised input `xn` (b, s, H), q (b, h, s, d)
    /// against the cached and new k, v (b, h_kv, past + s, d); the causal mask is aligned to
    /// the last key and `mask` hides padded key slots (skipped, not computed).
    fn attention(
        &self,
        xn: &Tensor,
        rope: &RopeRows,
        mask: Option<&Tensor>,
        cache: &mut KvCache,
        index: usize,
    ) -> Result<Tensor> {
        let (b, s) = (xn.dims()[0], xn.dims()[1]);
        let d = self.head_dim;
        // (b, s, (h + 2·h_kv)·d) → (b, s, h + 2·h_kv, d); each of q, k, v is a range of those
        // heads, moved to (b, heads, s, d): views, no copies.
        let (h, hk) = (self.heads, self.kv_heads);
        let stacked = self.qkv.forward(xn)?.reshape([b, s, h + 2 * hk, d])?;
        let part = |start: usize, n: usize| stacked.narrow(2, start, n)?.permute(&[0, 2, 1, 3]);
        let q = rope.apply(&part(0, h)?)?;
        let k = rope.apply(&part(h, hk)?)?;
        let v = part(h + hk, hk)?.contiguous()?;
        let (k, v) = cache.append(index, k, v)?;
        let params = AttentionParams {
            scale: 1.0 / (d as f32).sqrt(),
            causal: true,
        };
        let ctx = q.attention(&k, &v, mask, params)?;
        // (b, heads, s, d) → (b, s, heads, d) → (b, s, heads·d): a counted copy.
        let ctx = ctx
            .permute(&[0, 2, 1, 3])?
            .reshape([b, s, self.heads * d])?;
        self.o.forward(&ctx)
    }

    /// down(silu(gate(xn)) · up(xn)) of the normalised input `xn`, through the inner width I.
    fn mlp(&self, xn: &Tensor) -> Result<Tensor> {
        let gate_up = self.gate_up.forward(xn)?; // (b, s, 2·I): gate, then up
        let i = gate_up.shape().last() / 2;
        let last = gate_up.rank() - 1;
        let inner = gate_up
            .narrow(last, 0, i)?
            .silu_mul(&gate_up.narrow(last, i, i)?)?;
        self.down.forward(&inner)
    }
}
