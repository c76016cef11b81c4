//! [`Storage`]: one variant per backend. Adding a backend adds a variant here, and the
//! compiler then lists every dispatch site that must learn about it. A dropped host
//! storage (its last tensor gone) gives its buffer to the CPU buffer pool
//! ([`tally_cpu::buffers`]), from which later op outputs of the same dtype and size are taken.

use std::sync::atomic::{AtomicIsize, Ordering};

use tally_core::{DType, Device};
use tally_cpu::CpuStorage;
use tally_cuda::CudaStorage;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// Bytes of the buffers that tensors hold now (weights, activations, caches), each storage
/// counted once however many tensors and views share it; freed and pooled buffers are not
/// counted. Two relaxed atomic updates per op output, one per storage dropped.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed).max(0) as usize
}

/// The most [`live_bytes`] since the last [`reset_peak_live_bytes`].
pub fn peak_live_bytes() -> usize {
    PEAK.load(Ordering::Relaxed).max(0) as usize
}

/// Starts a new peak window at the current [`live_bytes`].
pub fn reset_peak_live_bytes() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Counts `s` as held by a tensor (called once per storage, when a tensor first wraps it).
pub(crate) fn track(s: &Storage) {
    let b = s.bytes() as isize;
    let now = LIVE.fetch_add(b, Ordering::Relaxed) + b;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// The buffer behind a tensor, on whichever device holds it.
#[derive(Debug)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
    /// GPU memory (its device freed it in stream order when dropped).
    Cuda(CudaStorage),
}

impl Drop for Storage {
    fn drop(&mut self) {
        LIVE.fetch_sub(self.bytes() as isize, Ordering::Relaxed);
        match self {
            Storage::Cpu(s) => {
                tally_cpu::buffers::recycle(std::mem::replace(s, CpuStorage::F32(Vec::new())))
            }
            Storage::Cuda(_) => {}
        }
    }
}

impl Storage {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            Storage::Cuda(s) => s.dtype(),
        }
    }

    /// Device.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(s) => s.device(),
        }
    }

    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            Storage::Cuda(s) => s.len(),
        }
    }

    /// Bytes of its elements.
    pub fn bytes(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
