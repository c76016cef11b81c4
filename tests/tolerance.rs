//! [`Tolerance`]: how close a kernel's output must be to the f64 reference, per dtype.

use tally_core::DType;

/// `|got − want| ≤ abs + rel·|want|`, elementwise.
///
/// The reference runs in f64 on the very values the tensor holds (inputs are rounded to
/// the dtype first), so the tolerance only has to cover the kernel's f32 arithmetic and,
/// for f16/bf16, the final rounding of each output to the narrow type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute floor, for outputs at or near zero.
    pub abs: f64,
}

impl Tolerance {
    /// f32 kernels: a few ulps of f32 (u = 6e-8) after a handful of roundings.
    pub const F32: Tolerance = Tolerance {
        rel: 1e-5,
        abs: 1e-6,
    };
    /// f16 outputs: one rounding to an 11-bit significand is 2⁻¹¹ ≈ 4.9e-4 relative.
    pub const F16: Tolerance = Tolerance {
        rel: 1e-2,
        abs: 1e-3,
    };
    /// bf16 outputs: one rounding to an 8-bit significand is 2⁻⁸ ≈ 3.9e-3 relative.
    pub const BF16: Tolerance = Tolerance {
        rel: 1e-2,
        abs: 1e-3,
    };

    /// The tolerance for outputs of `dtype` (float dtypes only).
    pub fn of(dtype: DType) -> Tolerance {
        match dtype {
            DType::F32 => Tolerance::F32,
            DType::F16 => Tolerance::F16,
            DType::BF16 => Tolerance::BF16,
            other => panic!("no tolerance for the integer dtype {other}"),
        }
    }

    /// Looser for outputs that are sums of `terms` products of inputs bounded by 1 (matmul,
    /// conv, attention): an f32 sum's rounding error grows with its length and with
    /// Σ|term| (≤ `terms`), not with the result, which cancellation can make tiny. The
    /// absolute floor therefore grows linearly with `terms`.
    pub fn summing(self, terms: usize) -> Tolerance {
        Tolerance {
            rel: self.rel,
            abs: self.abs * terms.max(1) as f64,
        }
    }

    /// Looser for outputs that subtract nearly equal values: centring x − mean keeps only
    /// the bits of x that the mean does not share, so an output normalised by σ carries an
    /// absolute error of about rel·max|x|/σ. `condition` is that ratio (times any scale
    /// applied after), and is added to the absolute floor.
    pub fn conditioned(self, condition: f64) -> Tolerance {
        Tolerance {
            rel: self.rel,
            abs: self.abs + self.rel * condition,
        }
    }

    /// True when `got` is within this tolerance of `want`.
    pub fn accepts(&self, got: f64, want: f64) -> bool {
        if got.is_nan() || want.is_nan() {
            return got.is_nan() && want.is_nan();
        }
        if got == want {
            return true; // also equal infinities
        }
        (got - want).abs() <= self.abs + self.rel * want.abs()
    }

    /// Panics naming `what`, the first bad index and both values when any element is out.
    pub fn assert_close(&self, got: &[f64], want: &[f64], what: &str) {
        assert_eq!(
            got.len(),
            want.len(),
            "{what}: {} outputs, reference has {}",
            got.len(),
            want.len()
        );
        if let Some((i, (g, w))) = got
            .iter()
            .zip(want)
            .enumerate()
            .find(|(_, (g, w))| !self.accepts(**g, **w))
        {
            panic!(
                "{what}: element {i} is {g}, reference {w} (|diff| {:.3e} > {:?}); {} elements",
                (g - w).abs(),
                self,
                got.len()
            );
        }
    }
}
