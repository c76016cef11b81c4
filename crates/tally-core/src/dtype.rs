//! Element types: the [`DType`] tag and the traits that tie Rust scalars to it.

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16: binary32 with the low 16 mantissa bits dropped.
    BF16,
    /// Signed 64-bit integer (token ids, indices).
    I64,
    /// Unsigned 32-bit integer (token ids, argmax results).
    U32,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 5] = [DType::F32, DType::F16, DType::BF16, DType::I64, DType::U32];

    /// Bytes taken by one element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I64 => 8,
        }
    }

    /// The short lowercase name used in reports, kernel symbols and JSON (`f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::U32 => "u32",
        }
    }

    /// True for the floating-point dtypes.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// Parses a name as printed by [`DType::name`] (also accepts safetensors' upper-case names).
    pub fn parse(name: &str) -> Option<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A Rust scalar type that is the element of one [`DType`].
pub trait WithDType: Copy + Send + Sync + PartialOrd + std::fmt::Debug + 'static {
    /// The dtype tag of this scalar.
    const DTYPE: DType;
    /// Widening conversion used by references and tests.
    fn to_f64(self) -> f64;
    /// Narrowing conversion (rounds to nearest for floats, truncates for integers).
    fn from_f64(v: f64) -> Self;
}

/// A floating-point element that kernels compute on in f32 registers.
pub trait FloatElem: WithDType + Default {
    /// Converts to f32 for computation.
    fn to_f32(self) -> f32;
    /// Rounds an f32 result back to this type.
    fn from_f32(v: f32) -> Self;
    /// The slice itself when this type is f32 (kernels then skip the conversion buffer).
    fn as_f32s(s: &[Self]) -> Option<&[f32]> {
        let _ = s;
        None
    }
    /// The slice itself, writable, when this type is f32.
    fn as_f32s_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        let _ = s;
        None
    }
    /// Converts `src` into `dst` (the shorter length of the two): element by element,
    /// which compiles to vector code for f32 and bf16; f16 uses `half`'s slice conversion
    /// (F16C where the host has it), since its scalar conversion is a call per element.
    #[inline(always)]
    fn convert_to_f32(src: &[Self], dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.to_f32();
        }
    }
}

macro_rules! with_dtype {
    ($ty:ty, $dtype:ident, $to:expr, $from:expr) => {
        impl WithDType for $ty {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
        }
    };
}

with_dtype!(f32, F32, |v: f32| v as f64, |v: f64| v as f32);
with_dtype!(f16, F16, |v: f16| v.to_f64(), f16::from_f64);
with_dtype!(bf16, BF16, |v: bf16| v.to_f64(), bf16::from_f64);
with_dtype!(i64, I64, |v: i64| v as f64, |v: f64| v as i64);
with_dtype!(u32, U32, |v: u32| v as f64, |v: f64| v as u32);

impl FloatElem for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn as_f32s(s: &[Self]) -> Option<&[f32]> {
        Some(s)
    }
    #[inline(always)]
    fn as_f32s_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        Some(s)
    }
}

impl FloatElem for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    #[inline(always)]
    fn convert_to_f32(src: &[Self], dst: &mut [f32]) {
        use half::slice::HalfFloatSliceExt;
        let n = src.len().min(dst.len());
        src[..n].convert_to_f32_slice(&mut dst[..n]);
    }
}

impl FloatElem for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16_round(v)
    }
}

/// f32 → bf16, round to nearest even, NaN kept quiet: the same bits as `half`'s
/// conversion, written without branches so that loops over it vectorise (`half`'s
/// portable path branches per element).
#[inline(always)]
fn bf16_round(v: f32) -> bf16 {
    let x = v.to_bits();
    let nan = (x & 0x7fff_ffff) > 0x7f80_0000;
    let rounded = x.wrapping_add(0x7fff + ((x >> 16) & 1)) >> 16;
    let quiet = (x >> 16) | 0x0040;
    bf16::from_bits(if nan { quiet } else { rounded } as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branchless rounding gives `half`'s bits for every sign and exponent, a spread of
    /// mantissas (ties, sticky bits), infinities, NaNs and the largest finite values.
    #[test]
    fn bf16_rounding_matches_half_bit_for_bit() {
        let mut checked = 0u64;
        for hi in 0..=0xffffu32 {
            for lo in [0u32, 1, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff] {
                let v = f32::from_bits(hi << 16 | lo);
                assert_eq!(
                    bf16_round(v).to_bits(),
                    bf16::from_f32(v).to_bits(),
                    "bits {:#010x}",
                    v.to_bits()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 65_536 * 7);
    }

    #[test]
    fn sizes_and_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::parse(d.name()), Some(d));
            assert_eq!(DType::parse(&d.name().to_uppercase()), Some(d));
        }
        assert_eq!(DType::BF16.size_in_bytes(), 2);
        assert_eq!(DType::I64.size_in_bytes(), 8);
        assert_eq!(DType::parse("f64"), None);
    }
}
