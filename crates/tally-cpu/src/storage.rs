//! [`CpuStorage`]: a host buffer of one dtype.

use crate::buffers;
use half::{bf16, f16};
use tally_core::{DType, Error, Result, WithDType};

/// A contiguous host buffer; tensors view it through a [`tally_core::Layout`].
#[derive(Clone, Debug, PartialEq)]
pub enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// i64 elements.
    I64(Vec<i64>),
    /// u32 elements.
    U32(Vec<u32>),
}

impl CpuStorage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::U32(_) => DType::U32,
        }
    }

    /// Number of elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
            CpuStorage::U32(v) => v.len(),
        }
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A zero-filled buffer of `n` elements (a pooled one when the pool holds that size).
    pub fn zeros(dtype: DType, n: usize) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(buffers::filled(n, 0.0)),
            DType::F16 => CpuStorage::F16(buffers::filled(n, f16::ZERO)),
            DType::BF16 => CpuStorage::BF16(buffers::filled(n, bf16::ZERO)),
            DType::I64 => CpuStorage::I64(buffers::filled(n, 0)),
            DType::U32 => CpuStorage::U32(buffers::filled(n, 0)),
        }
    }

    /// Wraps a vector of any supported scalar.
    pub fn from_vec<T: CpuElem>(v: Vec<T>) -> Self {
        T::wrap(v)
    }

    /// Borrows the buffer as `T`, or fails naming the dtypes.
    pub fn as_slice<T: CpuElem>(&self, op: &'static str) -> Result<&[T]> {
        T::unwrap_ref(self).ok_or(Error::DTypeMismatch {
            op,
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })
    }
}

/// A scalar that a [`CpuStorage`] variant holds.
pub trait CpuElem: WithDType {
    /// Wraps a vector into its variant.
    fn wrap(v: Vec<Self>) -> CpuStorage;
    /// Borrows the vector when the variant matches.
    fn unwrap_ref(s: &CpuStorage) -> Option<&[Self]>;
    /// Borrows the vector mutably when the variant matches.
    fn unwrap_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
}

macro_rules! cpu_elem {
    ($ty:ty, $variant:ident) => {
        impl CpuElem for $ty {
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(v)
            }
            fn unwrap_ref(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn unwrap_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

cpu_elem!(f32, F32);
cpu_elem!(f16, F16);
cpu_elem!(bf16, BF16);
cpu_elem!(i64, I64);
cpu_elem!(u32, U32);
