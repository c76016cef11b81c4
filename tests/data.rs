//! Seeded random data, tensors built from f64 values in any dtype, and index arithmetic.

use half::{bf16, f16};
use tally_core::{DType, Device};
use tally_tensor::Tensor;

/// SplitMix64: a tiny seeded generator, so a proptest case is reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    /// Uniform integer in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `n` values uniform in [lo, hi).
    pub fn values(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// True with probability one half.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// A CPU tensor of `shape` holding `data` converted to `dtype` (rounded to nearest for
/// narrow floats, truncated for integers).
pub fn make(data: &[f64], shape: &[usize], dtype: DType) -> Tensor {
    let shape = shape.to_vec();
    let t = match dtype {
        DType::F32 => Tensor::from_vec(
            data.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            shape,
            Device::Cpu,
        ),
        DType::F16 => Tensor::from_vec(
            data.iter().map(|&v| f16::from_f64(v)).collect::<Vec<_>>(),
            shape,
            Device::Cpu,
        ),
        DType::BF16 => Tensor::from_vec(
            data.iter().map(|&v| bf16::from_f64(v)).collect::<Vec<_>>(),
            shape,
            Device::Cpu,
        ),
        DType::I64 => Tensor::from_vec(
            data.iter().map(|&v| v as i64).collect::<Vec<_>>(),
            shape,
            Device::Cpu,
        ),
        DType::U32 => Tensor::from_vec(
            data.iter().map(|&v| v as u32).collect::<Vec<_>>(),
            shape,
            Device::Cpu,
        ),
    };
    t.expect("building a test tensor")
}

/// A random tensor of `shape` with values uniform in [lo, hi), and the values it really
/// holds (after rounding to `dtype`) for the reference to use.
pub fn input(rng: &mut Rng, shape: &[usize], dtype: DType, lo: f64, hi: f64) -> (Tensor, Vec<f64>) {
    let n = shape.iter().product();
    let t = make(&rng.values(n, lo, hi), shape, dtype);
    let held = t.to_f64_vec().expect("reading a test tensor back");
    (t, held)
}

/// The multi-index of row-major position `flat` in `dims`.
pub fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for (i, &d) in dims.iter().enumerate().rev() {
        idx[i] = flat % d;
        flat /= d;
    }
    idx
}

/// The row-major position of `idx` in `dims`.
pub fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}
