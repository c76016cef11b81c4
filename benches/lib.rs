//! Benchmarks live in `benches/benches/`; see `benches/README.md`. This library holds what
//! several of them share.

pub mod candle_peer;

/// The square operands the matmul benches multiply: A (n, n) and B (n, n) with values in
/// [-0.5, 0.5], steps of 1/97 and 1/89 (so bf16 rounds each once).
pub fn square_operands(n: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..n * n)
        .map(|i| ((i * 31 % 97) as f32 - 48.0) / 97.0)
        .collect();
    let b = (0..n * n)
        .map(|i| ((i * 17 % 89) as f32 - 44.0) / 89.0)
        .collect();
    (a, b)
}
