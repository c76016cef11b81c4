//! [`Storage`]: one variant per backend. Adding a backend adds a variant here, and the
//! compiler then lists every dispatch site that must learn about it. A dropped host
//! storage (its last tensor gone) gives its buffer to the CPU buffer pool
//! ([`tally_cpu::buffers`]), from which later op outputs of the same dtype and size are taken.

use tally_core::{DType, Device};
use tally_cpu::CpuStorage;

/// The buffer behind a tensor, on whichever device holds it.
#[derive(Debug)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
}

impl Drop for Storage {
    fn drop(&mut self) {
        match self {
            Storage::Cpu(s) => {
                tally_cpu::buffers::recycle(std::mem::replace(s, CpuStorage::F32(Vec::new())))
            }
        }
    }
}

impl Storage {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
        }
    }

    /// Device.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
        }
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
