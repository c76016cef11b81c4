//! The vector of f32 lanes the math in `funcs.rs` is written against, and its portable
//! (plain Rust, no fused multiply-add) implementation.

/// A register of `LANES` f32 values with the operations the vectorised functions need.
/// The x86 implementations (`x86.rs`) are only ever called inside a function compiled
/// with their target feature, entered after [`crate::gemm::Isa::available`] reported it.
pub(super) trait F32s: Copy {
    /// Lanes per register.
    const LANES: usize;
    /// The result of a lane-wise comparison.
    type Mask: Copy;
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// The first `LANES` values of `s` (`s.len() >= LANES`).
    fn load(s: &[f32]) -> Self;
    /// Writes the lanes to the first `LANES` values of `s` (`s.len() >= LANES`).
    fn store(self, s: &mut [f32]);
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self - o`.
    fn sub(self, o: Self) -> Self;
    /// `self · o`.
    fn mul(self, o: Self) -> Self;
    /// `self / o`, correctly rounded.
    fn div(self, o: Self) -> Self;
    /// `self · b + c`, fused where the ISA has FMA.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// Lane-wise minimum; `o` where either lane is NaN (as x86's `minps`), so a NaN in
    /// `o` passes through.
    fn min(self, o: Self) -> Self;
    /// Lane-wise maximum; `o` where either lane is NaN (as x86's `maxps`), so a NaN in
    /// `o` passes through.
    fn max(self, o: Self) -> Self;
    /// `|self|`.
    fn abs(self) -> Self;
    /// Rounded to the nearest integer (ties to even); |self| < 2²² here.
    fn round(self) -> Self;
    /// 2ⁿ for lanes holding integers n in [-126, 127].
    fn pow2i(self) -> Self;
    /// The lanes with the low 12 mantissa bits cleared (the high part of a Dekker split).
    fn high_bits(self) -> Self;
    /// `|self|` with the sign of `sign`.
    fn with_sign_of(self, sign: Self) -> Self;
    /// Lanes where `self < o`.
    fn lt(self, o: Self) -> Self::Mask;
    /// Lanes that are NaN.
    fn is_nan(self) -> Self::Mask;
    /// `a` where `m` is set, `b` elsewhere.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// The sum of the lanes.
    fn sum(self) -> f32;
    /// The largest lane.
    fn max_lane(self) -> f32;

    /// `self · 2ⁿ` for lanes `n` holding integers in [-150, 128] (results from subnormal
    /// to overflow). By default 2ⁿ is applied in two halves, each a [`F32s::pow2i`].
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        let n1 = n.mul(Self::splat(0.5)).round();
        let n2 = n.sub(n1);
        self.mul(n1.pow2i()).mul(n2.pow2i())
    }

    /// The rounding error of `self · self`: `self·self − sq` exactly, where `sq` is the
    /// rounded product. By default by a Dekker split (no fused multiply-add needed).
    #[inline(always)]
    fn square_error(self, sq: Self) -> Self {
        let hi = self.high_bits();
        let lo = self.sub(hi);
        hi.mul(hi)
            .sub(sq)
            .add(hi.mul(lo).mul(Self::splat(2.0)))
            .add(lo.mul(lo))
    }

    /// `1 / self` to within about an ulp, for finite `self` ≥ 1 (where it is used). By
    /// default a correctly rounded division.
    #[inline(always)]
    fn recip(self) -> Self {
        Self::splat(1.0).div(self)
    }
}

/// Lanes of the portable variant: 8, a width LLVM vectorises with baseline SSE2 or NEON.
const P: usize = 8;

/// The portable register: an array the compiler may vectorise, with no FMA.
#[derive(Clone, Copy)]
pub(super) struct Portable([f32; P]);

impl Portable {
    /// `f` on each lane.
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> Self {
        Portable(self.0.map(f))
    }

    /// `f` on each pair of lanes.
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Portable(std::array::from_fn(|i| f(self.0[i], o.0[i])))
    }
}

impl F32s for Portable {
    const LANES: usize = P;
    /// All ones in a set lane, zero elsewhere, so `select` is bitwise and vectorises.
    type Mask = [u32; P];

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Portable([v; P])
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        let mut r = [0f32; P];
        r.copy_from_slice(&s[..P]);
        Portable(r)
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        s[..P].copy_from_slice(&self.0);
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.zip(o, |a, b| a - b)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.zip(o, |a, b| a * b)
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self.zip(o, |a, b| a / b)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // Unfused: `f32::mul_add` is a libm call without the `fma` target feature.
        self.mul(b).add(c)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.zip(o, |a, b| if a < b { a } else { b })
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.zip(o, |a, b| if a > b { a } else { b })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.map(|a| f32::from_bits(a.to_bits() & 0x7fff_ffff))
    }
    #[inline(always)]
    fn round(self) -> Self {
        // Adding 1.5·2²³ pushes the fraction out of the mantissa under round-to-nearest-even.
        const MAGIC: f32 = 12_582_912.0;
        self.map(|a| (a + MAGIC) - MAGIC)
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // n + 1.5·2²³ has bits 0x4B40_0000 + n; rebias to 127 + n and shift into the
        // exponent, all in integer lanes (a float-to-int cast would saturate lane by lane).
        const MAGIC: f32 = 12_582_912.0;
        self.map(|n| {
            let b = (n + MAGIC).to_bits().wrapping_sub(0x4B40_0000 - 127);
            f32::from_bits(b << 23)
        })
    }
    #[inline(always)]
    fn high_bits(self) -> Self {
        self.map(|a| f32::from_bits(a.to_bits() & 0xffff_f000))
    }
    #[inline(always)]
    fn with_sign_of(self, sign: Self) -> Self {
        self.zip(sign, |a, s| {
            f32::from_bits((a.to_bits() & 0x7fff_ffff) | (s.to_bits() & 0x8000_0000))
        })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> [u32; P] {
        std::array::from_fn(|i| if self.0[i] < o.0[i] { !0 } else { 0 })
    }
    #[inline(always)]
    fn is_nan(self) -> [u32; P] {
        std::array::from_fn(|i| if self.0[i].is_nan() { !0 } else { 0 })
    }
    #[inline(always)]
    fn select(m: [u32; P], a: Self, b: Self) -> Self {
        Portable(std::array::from_fn(|i| {
            f32::from_bits((m[i] & a.0[i].to_bits()) | (!m[i] & b.0[i].to_bits()))
        }))
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        self.0.iter().sum()
    }
    #[inline(always)]
    fn max_lane(self) -> f32 {
        self.0.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
}
