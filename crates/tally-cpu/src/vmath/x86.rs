//! The AVX-512F (16 lanes) and AVX2 + FMA (8 lanes) registers behind [`F32s`].
//!
//! Every method is `#[inline(always)]` and only called from the `#[target_feature]` entry
//! points in `mod.rs`, which run after `Isa::available()` detected the feature: inlined
//! there, the intrinsics compile to single instructions of that ISA. That is the
//! `// SAFETY:` reason on each block below; loads and stores also assert their length.

use std::arch::x86_64::*;

use super::lanes::F32s;

/// Rounding mode for `round`: to nearest (ties to even), exceptions suppressed.
const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// Sixteen f32 lanes in a zmm register.
#[derive(Clone, Copy)]
pub(super) struct Avx512(__m512);

/// Eight f32 lanes in a ymm register.
#[derive(Clone, Copy)]
pub(super) struct Avx2(__m256);

impl F32s for Avx512 {
    const LANES: usize = 16;
    type Mask = __mmask16;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_set1_ps(v)) }
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        assert!(s.len() >= 16);
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_loadu_ps(s.as_ptr())) }
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        assert!(s.len() >= 16);
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm512_storeu_ps(s.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_add_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_sub_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_mul_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_div_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_min_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_max_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_abs_ps(self.0)) }
    }
    #[inline(always)]
    fn round(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_roundscale_ps::<NEAREST>(self.0)) }
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let n = _mm512_cvtps_epi32(self.0);
            let e = _mm512_slli_epi32::<23>(_mm512_add_epi32(n, _mm512_set1_epi32(127)));
            Avx512(_mm512_castsi512_ps(e))
        }
    }
    #[inline(always)]
    fn high_bits(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let m = _mm512_set1_epi32(0xffff_f000_u32 as i32);
            Avx512(_mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(self.0),
                m,
            )))
        }
    }
    #[inline(always)]
    fn with_sign_of(self, sign: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let s = _mm512_set1_epi32(0x8000_0000_u32 as i32);
            let mag = _mm512_andnot_si512(s, _mm512_castps_si512(self.0));
            let sg = _mm512_and_si512(s, _mm512_castps_si512(sign.0));
            Avx512(_mm512_castsi512_ps(_mm512_or_si512(mag, sg)))
        }
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __mmask16 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __mmask16 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __mmask16, a: Self, b: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_mask_blend_ps(m, b.0, a.0)) }
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
    #[inline(always)]
    fn max_lane(self) -> f32 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm512_reduce_max_ps(self.0) }
    }
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        // `vscalefps` scales by 2^floor(n) in one instruction, subnormals and overflow
        // included.
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_scalef_ps(self.0, n.0)) }
    }
    #[inline(always)]
    fn square_error(self, sq: Self) -> Self {
        // The fused a·a − sq is exact: the error of a rounded product is representable.
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx512(_mm512_fmsub_ps(self.0, self.0, sq.0)) }
    }
    #[inline(always)]
    fn recip(self) -> Self {
        // `vrcp14ps` (relative error < 2⁻¹⁴) and one Newton step r + r·(1 − d·r): error
        // below 2⁻²⁸ before the final rounding, without the divider's long latency.
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let r = _mm512_rcp14_ps(self.0);
            let e = _mm512_fnmadd_ps(self.0, r, _mm512_set1_ps(1.0));
            Avx512(_mm512_fmadd_ps(r, e, r))
        }
    }
}

impl F32s for Avx2 {
    const LANES: usize = 8;
    type Mask = __m256;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_set1_ps(v)) }
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        assert!(s.len() >= 8);
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_loadu_ps(s.as_ptr())) }
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        assert!(s.len() >= 8);
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_add_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_sub_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_mul_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_div_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_min_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_max_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0)) }
    }
    #[inline(always)]
    fn round(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_round_ps::<NEAREST>(self.0)) }
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let n = _mm256_cvtps_epi32(self.0);
            let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(n, _mm256_set1_epi32(127)));
            Avx2(_mm256_castsi256_ps(e))
        }
    }
    #[inline(always)]
    fn high_bits(self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let m = _mm256_castsi256_ps(_mm256_set1_epi32(0xffff_f000_u32 as i32));
            Avx2(_mm256_and_ps(self.0, m))
        }
    }
    #[inline(always)]
    fn with_sign_of(self, sign: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let s = _mm256_set1_ps(-0.0);
            Avx2(_mm256_or_ps(
                _mm256_andnot_ps(s, self.0),
                _mm256_and_ps(s, sign.0),
            ))
        }
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __m256 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __m256 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __m256, a: Self, b: Self) -> Self {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_blendv_ps(b.0, a.0, m)) }
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let s = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    fn max_lane(self) -> f32 {
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe {
            let s = _mm_max_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_max_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    fn square_error(self, sq: Self) -> Self {
        // The fused a·a − sq is exact: the error of a rounded product is representable.
        // SAFETY: inside this ISA's `#[target_feature]` entry point, after detection.
        unsafe { Avx2(_mm256_fmsub_ps(self.0, self.0, sq.0)) }
    }
}
