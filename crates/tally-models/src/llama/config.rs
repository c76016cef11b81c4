//! [`LlamaConfig`]: the shape of a Llama-architecture decoder, and its analytic FPO.

/// Sizes of a Llama decoder (what GGUF's `llama.*` metadata records).
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size V (rows of the tied embedding / output matrix).
    pub vocab_size: usize,
    /// Hidden width H.
    pub hidden_size: usize,
    /// SwiGLU inner width I.
    pub intermediate_size: usize,
    /// Decoder layers L.
    pub num_layers: usize,
    /// Query heads h.
    pub num_heads: usize,
    /// Key/value heads h_kv (h is a multiple of it).
    pub num_kv_heads: usize,
    /// Width of one head, d.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// Longest sequence the RoPE tables cover.
    pub max_position: usize,
}

impl LlamaConfig {
    /// SmolLM2-135M(-Instruct): L = 30, H = 576, h = 9, h_kv = 3, d = 64, I = 1536,
    /// V = 49152, eps = 1e-5, θ = 100000, 8192 positions.
    pub fn smollm2_135m() -> LlamaConfig {
        LlamaConfig {
            vocab_size: 49152,
            hidden_size: 576,
            intermediate_size: 1536,
            num_layers: 30,
            num_heads: 9,
            num_kv_heads: 3,
            head_dim: 64,
            rms_norm_eps: 1e-5,
            rope_theta: 100000.0,
            max_position: 8192,
        }
    }

    /// Weights of one layer's matrix products: q (H×h·d), k and v (H×h_kv·d each),
    /// o (h·d×H), gate and up (H×I each), down (I×H).
    pub fn layer_matmul_params(&self) -> u64 {
        let (h, i) = (self.hidden_size as u64, self.intermediate_size as u64);
        let (q, kv) = (
            (self.num_heads * self.head_dim) as u64,
            (self.num_kv_heads * self.head_dim) as u64,
        );
        h * q + 2 * h * kv + q * h + 3 * h * i
    }

    /// N_matmul: the weights every token multiplies, L layers plus the (tied) output
    /// projection V×H. 134,479,872 for SmolLM2-135M (the embedding gather is not a product).
    pub fn matmul_params(&self) -> u64 {
        self.num_layers as u64 * self.layer_matmul_params()
            + (self.vocab_size * self.hidden_size) as u64
    }

    /// Dense matrix-product FPO of one forward pass over b sequences of `s` new tokens
    /// after `past` cached ones, every query seeing every key (s_k = past + s):
    ///
    /// ```text
    /// 2·b·s·N_matmul                      projections, SwiGLU and the output head
    /// + 2·2·L·b·h·s·s_k·d                 q·kᵀ and p·v
    /// ```
    ///
    /// This is `Ledger::contraction_fpo_analytic` and PyTorch FlopCounterMode's count.
    pub fn dense_fpo(&self, b: usize, s: usize, past: usize) -> u64 {
        let (b, s, sk) = (b as u64, s as u64, (past + s) as u64);
        let (l, h, d) = (
            self.num_layers as u64,
            self.num_heads as u64,
            self.head_dim as u64,
        );
        2 * b * s * self.matmul_params() + 2 * 2 * l * b * h * s * sk * d
    }

    /// (query, key) pairs the causal mask hides in that pass: each of the `s` new queries
    /// skips the new keys after it, s·(s−1)/2 per head and sequence, L·b·h·s·(s−1)/2 in all
    /// (none for a one-token decode step). Each saves 4·d FPO (d MACs of q·k, d of p·v).
    pub fn causal_skipped_pairs(&self, b: usize, s: usize) -> u64 {
        let (b, s) = (b as u64, s as u64);
        self.num_layers as u64 * b * self.num_heads as u64 * s * s.saturating_sub(1) / 2
    }

    /// Matrix-product FPO a causal pass executes: [`LlamaConfig::dense_fpo`] less
    /// 4·d per [`LlamaConfig::causal_skipped_pairs`]. For a prefill (past = 0) that is
    /// about half the attention term; for a decode step (s = 1) it equals the dense count,
    /// 2·b·N_matmul + 4·L·b·h·(past + 1)·d.
    pub fn causal_fpo(&self, b: usize, s: usize, past: usize) -> u64 {
        self.dense_fpo(b, s, past) - 4 * self.head_dim as u64 * self.causal_skipped_pairs(b, s)
    }
}
