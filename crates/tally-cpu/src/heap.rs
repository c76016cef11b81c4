//! [`Counting`], a global allocator that counts: heap bytes now and at peak, and the number
//! and bytes of allocations (a `realloc` counts as one of its new size), all of them and
//! those of at least [`LARGE`] bytes, with the sizes of the first 4096 since a [`reset`].
//! The library never installs it; an application does (`#[global_allocator]`), as the
//! `tally` binary does to report a run's peak memory and the memory tests do. A few relaxed
//! atomic updates per allocation; the counts are process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The size from which an allocation counts as a large buffer: 4 KiB.
pub const LARGE: usize = 4096;

/// The system allocator, counted.
pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
static LARGE_COUNT: AtomicUsize = AtomicUsize::new(0);
static LARGE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Sizes of the first allocations since the last [`reset`], for the report.
static SIZES: [AtomicUsize; 4096] = [const { AtomicUsize::new(0) }; 4096];

/// How many allocations of each size were made since the last [`reset`] (the first 4096).
pub fn sizes() -> std::collections::BTreeMap<usize, usize> {
    let n = COUNT.load(Ordering::Relaxed).min(SIZES.len());
    let mut out = std::collections::BTreeMap::new();
    for s in &SIZES[..n] {
        *out.entry(s.load(Ordering::Relaxed)).or_insert(0) += 1;
    }
    out
}

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
    let i = COUNT.fetch_add(1, Ordering::Relaxed);
    if let Some(s) = SIZES.get(i) {
        s.store(bytes, Ordering::Relaxed);
    }
    BYTES.fetch_add(bytes, Ordering::Relaxed);
    if bytes >= LARGE {
        LARGE_COUNT.fetch_add(1, Ordering::Relaxed);
        LARGE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// adds bookkeeping on plain atomics, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is; `ptr` came from this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

/// Allocation counts over a stretch of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Allocations (and reallocations) of any size.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Allocations of at least [`LARGE`] bytes.
    pub large: usize,
    /// Their bytes.
    pub large_bytes: usize,
}

/// Heap bytes allocated now.
pub fn current() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// The most heap bytes allocated at once since the last [`reset`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new window: counts to zero, the peak at the current allocation.
pub fn reset() {
    PEAK.store(current(), Ordering::Relaxed);
    for c in [&COUNT, &BYTES, &LARGE_COUNT, &LARGE_BYTES] {
        c.store(0, Ordering::Relaxed);
    }
}

/// The counts since the last [`reset`].
pub fn counts() -> Counts {
    Counts {
        count: COUNT.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
        large: LARGE_COUNT.load(Ordering::Relaxed),
        large_bytes: LARGE_BYTES.load(Ordering::Relaxed),
    }
}
