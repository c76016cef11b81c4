//! [`CudaStorage`]: a device buffer of one dtype, and its copies to and from the host.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
use half::{bf16, f16};
use tally_core::{DType, Device, Result};
use tally_cpu::CpuStorage;

use crate::CudaDevice;

/// Elements of one dtype in GPU memory.
pub struct CudaStorage {
    buf: CudaSlice<u8>,
    dtype: DType,
    len: usize,
    dev: Arc<CudaDevice>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage({} × {}, {:?})",
            self.len, self.dtype, self.dev
        )
    }
}

/// The bytes of a host buffer.
fn host_bytes(s: &CpuStorage) -> &[u8] {
    fn raw<T: Copy>(v: &[T]) -> &[u8] {
        // SAFETY: plain-old-data elements (f32, f16, bf16, i64, u32) viewed as bytes.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
    }
    match s {
        CpuStorage::F32(v) => raw(v),
        CpuStorage::F16(v) => raw(v),
        CpuStorage::BF16(v) => raw(v),
        CpuStorage::I64(v) => raw(v),
        CpuStorage::U32(v) => raw(v),
    }
}

/// A host buffer of `dtype` made from `bytes` (its length a multiple of the element size).
fn from_bytes(dtype: DType, bytes: &[u8]) -> CpuStorage {
    fn typed<T: Copy + Default>(bytes: &[u8]) -> Vec<T> {
        let mut v = vec![T::default(); bytes.len() / std::mem::size_of::<T>()];
        // SAFETY: `v` holds exactly bytes.len() bytes of plain-old-data elements.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr().cast::<u8>(), bytes.len())
        };
        v
    }
    match dtype {
        DType::F32 => CpuStorage::F32(typed::<f32>(bytes)),
        DType::F16 => CpuStorage::F16(typed::<f16>(bytes)),
        DType::BF16 => CpuStorage::BF16(typed::<bf16>(bytes)),
        DType::I64 => CpuStorage::I64(typed::<i64>(bytes)),
        DType::U32 => CpuStorage::U32(typed::<u32>(bytes)),
    }
}

impl CudaStorage {
    /// An uninitialised buffer of `len` elements of `dtype` (every kernel writes its whole
    /// output).
    pub fn alloc(dev: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<CudaStorage> {
        let bytes = (len * dtype.size_in_bytes()).max(1);
        // SAFETY: the buffer is written by the kernel it is allocated for before any read.
        let buf = unsafe { dev.stream().alloc::<u8>(bytes) }
            .map_err(|e| dev.error(format!("alloc {bytes} bytes"), e))?;
        Ok(CudaStorage {
            buf,
            dtype,
            len,
            dev: dev.clone(),
        })
    }

    /// A zero-filled buffer.
    pub fn zeros(dev: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<CudaStorage> {
        let mut s = CudaStorage::alloc(dev, dtype, len)?;
        dev.stream()
            .memset_zeros(&mut s.buf)
            .map_err(|e| dev.error("zero a buffer", e))?;
        Ok(s)
    }

    /// A copy of a host buffer on `dev`.
    pub fn from_host(dev: &Arc<CudaDevice>, host: &CpuStorage) -> Result<CudaStorage> {
        let mut s = CudaStorage::alloc(dev, host.dtype(), host.len())?;
        let bytes = host_bytes(host);
        if !bytes.is_empty() {
            dev.stream()
                .memcpy_htod(bytes, &mut s.buf.slice_mut(..bytes.len()))
                .map_err(|e| dev.error("copy to device", e))?;
        }
        Ok(s)
    }

    /// The elements copied back to the host (waits for the ops that write them).
    pub fn to_host(&self) -> Result<CpuStorage> {
        let n = self.len * self.dtype.size_in_bytes();
        let mut bytes = vec![0u8; n];
        if n > 0 {
            self.dev
                .stream()
                .memcpy_dtoh(&self.buf.slice(..n), &mut bytes)
                .map_err(|e| self.dev.error("copy to host", e))?;
        }
        Ok(from_bytes(self.dtype, &bytes))
    }

    /// Overwrites this buffer with `src` (same dtype and length), on the device.
    pub fn copy_from(&mut self, src: &CudaStorage) -> Result<()> {
        let n = self.len * self.dtype.size_in_bytes();
        if src.dtype != self.dtype || src.len != self.len {
            return Err(tally_core::Error::invalid(
                "copy_from",
                format!(
                    "{} × {} into {} × {}",
                    src.len, src.dtype, self.len, self.dtype
                ),
            ));
        }
        self.dev
            .stream()
            .memcpy_dtod(&src.buf.slice(..n), &mut self.buf.slice_mut(..n))
            .map_err(|e| self.dev.error("copy on the device", e))
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device it lives on.
    pub fn device(&self) -> Device {
        self.dev.device()
    }

    /// The device handle.
    pub fn cuda_device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }

    /// The device address of element `offset`.
    pub(crate) fn ptr(&self, offset: usize) -> u64 {
        let (p, _sync) = self.buf.device_ptr(self.dev.stream());
        p + (offset * self.dtype.size_in_bytes()) as u64
    }

    /// The device address of element `offset`, for a kernel that writes it.
    pub(crate) fn ptr_mut(&mut self, offset: usize) -> u64 {
        let size = self.dtype.size_in_bytes();
        let stream = self.dev.stream().clone();
        let (p, _sync) = self.buf.device_ptr_mut(&stream);
        p + (offset * size) as u64
    }
}
