//! [`Tensor`]: a shared storage seen through a layout. Cloning is cheap (an `Arc`).

use std::sync::Arc;

use tally_core::backend::BackendStorage;
use tally_core::{DType, Device, Error, Layout, Result, Shape, WithDType};
use tally_cpu::{CpuElem, CpuStorage};

use crate::Storage;

/// An n-dimensional array on a device. Ops return new tensors; views share storage.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor({}, {}, {})",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}

/// A host buffer placed on `device`: kept, or copied to the GPU (opening it on first use).
fn place(host: CpuStorage, device: Device) -> Result<Storage> {
    match device {
        Device::Cpu => Ok(Storage::Cpu(host)),
        Device::Cuda(n) => {
            let dev = tally_cuda::CudaDevice::get(n)?;
            Ok(Storage::Cuda(tally_cuda::CudaStorage::from_host(
                &dev, &host,
            )?))
        }
    }
}

impl Tensor {
    /// Wraps a storage seen through `layout`.
    pub(crate) fn from_storage(storage: Storage, layout: Layout) -> Tensor {
        crate::storage::track(&storage);
        Tensor {
            storage: Arc::new(storage),
            layout,
        }
    }

    /// The same storage through another layout.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            layout,
        }
    }

    /// A tensor of `shape` holding `data` in row-major order.
    pub fn from_vec<T: CpuElem>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return Err(Error::shape(
                "from_vec",
                &shape,
                format!(
                    "{} elements given for {} places",
                    data.len(),
                    shape.elem_count()
                ),
            ));
        }
        Ok(Tensor::from_storage(
            place(CpuStorage::from_vec(data), device)?,
            Layout::contiguous(shape),
        ))
    }

    /// A tensor of `shape` copied from `data`.
    pub fn from_slice<T: CpuElem>(
        data: &[T],
        shape: impl Into<Shape>,
        device: Device,
    ) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape, device)
    }

    /// A host tensor over an existing CPU buffer (used by checkpoint loaders).
    pub fn from_cpu_storage(storage: CpuStorage, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if storage.len() != shape.elem_count() {
            return Err(Error::shape(
                "from_cpu_storage",
                &shape,
                format!("buffer holds {} elements", storage.len()),
            ));
        }
        Ok(Tensor::from_storage(
            Storage::Cpu(storage),
            Layout::contiguous(shape),
        ))
    }

    /// A zero-filled tensor.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        let storage = match device {
            Device::Cpu => Storage::Cpu(CpuStorage::zeros(dtype, shape.elem_count())),
            Device::Cuda(n) => Storage::Cuda(tally_cuda::CudaStorage::zeros(
                &tally_cuda::CudaDevice::get(n)?,
                dtype,
                shape.elem_count(),
            )?),
        };
        Ok(Tensor::from_storage(storage, Layout::contiguous(shape)))
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        self.layout.shape()
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.layout.dims()
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims().len()
    }

    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.shape().elem_count()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// Device.
    pub fn device(&self) -> Device {
        self.storage.device()
    }

    /// The layout through which the storage is seen.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The storage behind the view.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The storage, mutably, when no other tensor or view shares it.
    pub(crate) fn storage_mut(&mut self) -> Option<&mut Storage> {
        Arc::get_mut(&mut self.storage)
    }

    /// Bytes the byte convention charges for reading this view: each distinct element once.
    pub fn reads(&self) -> u64 {
        (self.layout.distinct_elems() * self.dtype().size_in_bytes()) as u64
    }

    /// True when the view is row-major and dense.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The elements in row-major order as `T`, which must be the tensor's dtype.
    pub fn to_vec<T: CpuElem>(&self) -> Result<Vec<T>> {
        let host;
        let s = match &*self.storage {
            Storage::Cpu(s) => s,
            Storage::Cuda(s) => {
                host = s.to_host()?;
                &host
            }
        };
        let data = s.as_slice::<T>("to_vec")?;
        Ok(match self.layout.contiguous_range() {
            Some(r) => data[r].to_vec(),
            None => self.layout.indices().map(|i| data[i]).collect(),
        })
    }

    /// The tensor on `device`: itself when it is there already, else its elements copied
    /// over (contiguous). Copies between host and GPU are transfers, not kernels: they are
    /// not recorded.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let host = match &*self.storage {
            Storage::Cpu(s) => s.copy_contiguous(&self.layout)?.out,
            Storage::Cuda(s) => {
                let all = s.to_host()?;
                all.copy_contiguous(&self.layout)?.out
            }
        };
        Ok(Tensor::from_storage(
            place(host, device)?,
            Layout::contiguous(self.shape().clone()),
        ))
    }

    /// The elements widened to f64 in row-major order, whatever the dtype.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        fn widen<T: CpuElem>(t: &Tensor) -> Result<Vec<f64>> {
            Ok(t.to_vec::<T>()?
                .into_iter()
                .map(WithDType::to_f64)
                .collect())
        }
        match self.dtype() {
            DType::F32 => widen::<f32>(self),
            DType::F16 => widen::<half::f16>(self),
            DType::BF16 => widen::<half::bf16>(self),
            DType::I64 => widen::<i64>(self),
            DType::U32 => widen::<u32>(self),
        }
    }

    /// The single element of a one-element tensor, as f64.
    pub fn to_scalar_f64(&self) -> Result<f64> {
        if self.elem_count() != 1 {
            return Err(Error::shape(
                "to_scalar",
                self.shape(),
                "expected one element",
            ));
        }
        Ok(self.to_f64_vec()?[0])
    }

    /// A view of `len` entries of `dim` from `start`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.narrow(dim, start, len)?))
    }

    /// A view with `d0` and `d1` swapped.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.transpose(d0, d1)?))
    }

    /// A view with the last two dimensions swapped.
    pub fn t(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return Err(Error::shape("t", self.shape(), "needs rank ≥ 2"));
        }
        self.transpose(r - 2, r - 1)
    }

    /// A view with the dimensions reordered: output dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.permute(perm)?))
    }

    /// A view stretched to `shape` by broadcasting.
    pub fn broadcast_as(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.broadcast_as(&shape.into())?))
    }

    /// The same elements under `shape`: a view when contiguous, else a counted copy.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape().clone(),
                rhs: shape,
            });
        }
        match self.layout.reshape(shape.clone()) {
            Some(l) => Ok(self.with_layout(l)),
            None => {
                let c = self.contiguous()?;
                let l = c.layout.reshape(shape).ok_or_else(|| {
                    Error::invalid("reshape", "contiguous copy could not be reshaped")
                })?;
                Ok(c.with_layout(l))
            }
        }
    }

    /// A view with a dimension of size 1 inserted at `dim`.
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        if dim > self.rank() {
            return Err(Error::DimOutOfRange {
                op: "unsqueeze",
                dim,
                rank: self.rank(),
            });
        }
        let mut dims = tally_core::shape::Dims::from_slice(self.dims());
        let mut strides = tally_core::shape::Dims::from_slice(self.layout.strides());
        let stride = strides.get(dim).map(|&s| s * dims[dim]).unwrap_or(1);
        dims.insert(dim, 1);
        strides.insert(dim, stride);
        Ok(self.with_layout(Layout::from_parts(
            Shape::new(dims),
            strides,
            self.layout.offset(),
        )))
    }

    /// A view with the size-1 dimension `dim` removed.
    pub fn squeeze(&self, dim: usize) -> Result<Tensor> {
        let size = self.shape().dim("squeeze", dim)?;
        if size != 1 {
            return Err(Error::shape(
                "squeeze",
                self.shape(),
                format!("dimension {dim} is not 1"),
            ));
        }
        let mut dims = tally_core::shape::Dims::from_slice(self.dims());
        let mut strides = tally_core::shape::Dims::from_slice(self.layout.strides());
        dims.remove(dim);
        strides.remove(dim);
        Ok(self.with_layout(Layout::from_parts(
            Shape::new(dims),
            strides,
            self.layout.offset(),
        )))
    }

    /// Fails unless `other` has this tensor's dtype and device.
    pub(crate) fn same_kind(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: other.dtype(),
            });
        }
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch {
                op,
                lhs: self.device(),
                rhs: other.device(),
            });
        }
        Ok(())
    }

    /// Fails unless the dtype is a float.
    pub(crate) fn float(&self, op: &'static str) -> Result<()> {
        if self.dtype().is_float() {
            Ok(())
        } else {
            Err(Error::UnsupportedDType {
                op,
                dtype: self.dtype(),
            })
        }
    }
}
