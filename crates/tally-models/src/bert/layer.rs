//! [`EncoderLayer`]: one post-norm BERT encoder layer, self-attention then feed-forward,
//! each followed by a residual add and a LayerNorm.

use tally_core::backend::AttentionParams;
use tally_core::{scope, Result};
use tally_nn::{LayerNorm, Linear, WeightView};
use tally_tensor::Tensor;

use super::BertConfig;

/// The weights of `encoder.layer.{i}` (PyTorch names under the view's prefix):
/// `attention.self.{query,key,value}`, `attention.output.{dense,LayerNorm}`,
/// `intermediate.dense`, `output.{dense,LayerNorm}`. Query, key and value are stacked into
/// one projection, so they run as one product over the layer's input (the same FPO as
/// three products; the input is read once, and one call with three times the columns
/// keeps both threads on longer panel sweeps).
#[derive(Clone, Debug)]
pub struct EncoderLayer {
    /// query, key and value stacked: H → 3·H.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
    heads: usize,
}

impl EncoderLayer {
    /// Loads one layer from `vb` (prefixed `encoder.layer.{i}`), as `vb.dtype()`.
    pub fn load(vb: &WeightView, c: &BertConfig) -> Result<EncoderLayer> {
        let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        let att = vb.pp("attention");
        // Weights (H, H) and biases (H) of query, key and value, stacked along out.
        let parts = ["self.query", "self.key", "self.value"].map(|name| att.pp(name));
        let get = |what: &str, shape: &[usize]| -> Result<Tensor> {
            let ts = parts
                .iter()
                .map(|p| p.get(what, shape, vb.dtype()))
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&ts.iter().collect::<Vec<_>>(), 0)
        };
        Ok(EncoderLayer {
            qkv: Linear::new(get("weight", &[h, h])?, Some(get("bias", &[h])?))?,
            attn_out: Linear::load(&att.pp("output.dense"), h, h, true)?,
            attn_norm: LayerNorm::load(&att.pp("output.LayerNorm"), h, eps)?,
            intermediate: Linear::load(&vb.pp("intermediate.dense"), h, i, true)?,
            output: Linear::load(&vb.pp("output.dense"), i, h, true)?,
            out_norm: LayerNorm::load(&vb.pp("output.LayerNorm"), h, eps)?,
            heads: c.num_attention_heads,
        })
    }

    /// Parameters of one layer: four H×H projections and two H↔I ones with their biases,
    /// and two LayerNorms (weight and bias each).
    pub fn num_params(c: &BertConfig) -> usize {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * (2 * h)
    }

    /// x (b, s, H) → (b, s, H) with `mask` (b, s) u32 (0 = padded key, never attended).
    /// The attention block runs under the scope `layer.{index}.attention`, the
    /// feed-forward block under `layer.{index}.ffn`.
    pub fn forward(&self, x: &Tensor, mask: &Tensor, index: usize) -> Result<Tensor> {
        let x = scope(&format!("layer.{index}.attention"), || {
            self.attention(x, mask)
        })?;
        scope(&format!("layer.{index}.ffn"), || self.ffn(&x))
    }

    /// LayerNorm(x + Dense(softmax(q·kᵀ/√d)·v)) with q, k, v (b, heads, s, d) views.
    fn attention(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, s, h) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        let d = h / self.heads;
        // (b, s, H) → (b, s, heads, d) → (b, heads, s, d), both views.
        // (b, s, 3·H) → (b, s, 3·heads, d); q, k and v are ranges of those heads.
        let stacked = self.qkv.forward(x)?.reshape([b, s, 3 * self.heads, d])?;
        let split = |i: usize| {
            stacked
                .narrow(2, i * self.heads, self.heads)?
                .permute(&[0, 2, 1, 3])
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let params = AttentionParams {
            scale: 1.0 / (d as f32).sqrt(),
            causal: false,
        };
        let ctx = q.attention(&k, &v, Some(mask), params)?;
        // (b, heads, s, d) → (b, s, heads, d) → (b, s, H): a counted copy.
        let ctx = ctx.permute(&[0, 2, 1, 3])?.reshape([b, s, h])?;
        self.attn_norm
            .forward_residual(&self.attn_out.forward(&ctx)?, x)
    }

    /// LayerNorm(x + Dense(GELU(Dense(x)))), through the intermediate width I.
    fn ffn(&self, x: &Tensor) -> Result<Tensor> {
        // GELU runs inside the product: each task applies it to its finished region while
        // that is in cache, and the GELU input is never a tensor of its own.
        let inner = self
            .intermediate
            .forward_activated(x, tally_core::UnaryOp::GeluErf)?;
        self.out_norm
            .forward_residual(&self.output.forward(&inner)?, x)
    }
}
