//! Little-endian checkpoint bytes to a [`CpuStorage`], converting between float dtypes on load.
//!
//! Mapped bytes carry no alignment guarantee (the data section starts at `8 + header
//! length`), so every element is assembled with `from_le_bytes` from a byte chunk, never
//! by casting the slice.

use half::{bf16, f16};
use tally_core::DType;
use tally_cpu::CpuStorage;

/// Decodes `bytes` (elements of `N` bytes) with `f`.
fn decode<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

/// Decodes float bytes of dtype `src`, mapping each element through f32 with `to`.
fn floats<T>(bytes: &[u8], src: DType, to: impl Fn(f32) -> T) -> Vec<T> {
    match src {
        DType::F16 => decode(
            bytes,
            |a| to(f16::from_bits(u16::from_le_bytes(a)).to_f32()),
        ),
        DType::BF16 => decode(bytes, |a| {
            to(bf16::from_bits(u16::from_le_bytes(a)).to_f32())
        }),
        _ => decode(bytes, |a| to(f32::from_le_bytes(a))),
    }
}

/// The storage for `bytes` stored as `src` and wanted as `want`: the same dtype is copied
/// bit for bit; a float is converted to another float (through f32, rounding to nearest).
/// `None` when the pair cannot convert (an integer to anything but itself).
pub(crate) fn to_storage(bytes: &[u8], src: DType, want: DType) -> Option<CpuStorage> {
    Some(match (src, want) {
        (DType::F16, DType::F16) => {
            CpuStorage::F16(decode(bytes, |a| f16::from_bits(u16::from_le_bytes(a))))
        }
        (DType::BF16, DType::BF16) => {
            CpuStorage::BF16(decode(bytes, |a| bf16::from_bits(u16::from_le_bytes(a))))
        }
        (DType::I64, DType::I64) => CpuStorage::I64(decode(bytes, i64::from_le_bytes)),
        (DType::U32, DType::U32) => CpuStorage::U32(decode(bytes, u32::from_le_bytes)),
        (s, DType::F32) if s.is_float() => CpuStorage::F32(floats(bytes, s, |v| v)),
        (s, DType::F16) if s.is_float() => CpuStorage::F16(floats(bytes, s, f16::from_f32)),
        (s, DType::BF16) if s.is_float() => CpuStorage::BF16(floats(bytes, s, bf16::from_f32)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_bytes_decode() {
        let mut bytes = vec![0u8];
        bytes.extend(1.5f32.to_le_bytes());
        bytes.extend((-2.0f32).to_le_bytes());
        let s = to_storage(&bytes[1..], DType::F32, DType::F32).unwrap();
        assert_eq!(s, CpuStorage::F32(vec![1.5, -2.0]));
    }

    #[test]
    fn floats_convert_and_integers_do_not() {
        let bytes: Vec<u8> = [1.0f32, 0.1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = to_storage(&bytes, DType::F32, DType::BF16).unwrap();
        assert_eq!(
            s,
            CpuStorage::BF16(vec![bf16::from_f32(1.0), bf16::from_f32(0.1)])
        );
        assert!(to_storage(&bytes, DType::U32, DType::F32).is_none());
        assert!(to_storage(&bytes, DType::F32, DType::U32).is_none());
    }
}
