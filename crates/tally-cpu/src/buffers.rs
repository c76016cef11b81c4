//! The buffer pool: host buffers freed by dropped tensors, kept for the next op outputs
//! and kernel scratch of the same dtype and element count, so a forward pass repeated at
//! one shape (decode steps, batches of one size) stops calling the system allocator for
//! them after its first run.
//!
//! - Buckets are keyed by exact (dtype, capacity): a model at a fixed shape asks for the
//!   same few sizes in every layer and on every call, so exact reuse finds them, and a
//!   buffer handed out is never larger than asked (power-of-two buckets would waste up to
//!   half of every buffer, beyond a peak-memory budget of 1.2× the live activations).
//! - Only sizes that have been asked for are kept: a weight's buffer dropped after
//!   packing, or a dropped model's weights, are freed unless an op output has that size.
//! - When a request finds no buffer of its size, so that memory must grow, the pool first
//!   frees idle buffers (least recently used sizes first) until it holds at most
//!   1/[`IDLE_SHARE`] of the bytes it has handed out and not got back: the buffers in use
//!   plus those kept idle then stay within 1.1× the most in use at once, which leaves the
//!   other tenth of the 1.2× budget to kernel scratch (GEMM packing, attention rows), while a pass that
//!   asks for the sizes it asked for before (a decode step) finds them all.
//! - It holds at most [`limit`] bytes (default [`DEFAULT_LIMIT`]); a buffer that would
//!   overflow it evicts the least recently used sizes, and one larger than it is freed.
//!
//! One mutex guards it, taken once per buffer handed out or returned (an op's output, not
//! its elements). A reused buffer keeps its old contents unless filling is asked for
//! ([`filled`]): kernels that write every output element take [`for_overwrite`], which
//! writes nothing into a reused buffer.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use half::{bf16, f16};
use tally_core::DType;

use crate::CpuStorage;

/// Bytes the pool holds at most unless [`set_limit`] says otherwise: 256 MiB.
pub const DEFAULT_LIMIT: usize = 256 << 20;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);

/// On a miss, idle bytes are cut to at most 1/`IDLE_SHARE` of the bytes handed out.
pub const IDLE_SHARE: usize = 10;

/// The free buffers of one (dtype, capacity).
struct Bucket {
    free: Vec<CpuStorage>,
    /// The pool's tick when this size was last taken or returned (for eviction).
    last_used: u64,
}

struct Pool {
    buckets: BTreeMap<(u8, usize), Bucket>,
    held: usize,
    /// Bytes handed out and not returned. A returned buffer of a size that was asked for
    /// counts as returned even if another made it (a weight of an activation's size),
    /// saturating at 0.
    out: usize,
    tick: u64,
    hits: u64,
    misses: u64,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    buckets: BTreeMap::new(),
    held: 0,
    out: 0,
    tick: 0,
    hits: 0,
    misses: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // A panic while holding the lock leaves the pool consistent (every update is a push
    // or a pop with its byte count), so a poisoned lock is used as is.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the pool holds and how often it answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes of free buffers held.
    pub held_bytes: usize,
    /// Free buffers held.
    pub buffers: usize,
    /// Requests answered with a held buffer.
    pub hits: u64,
    /// Requests for a poolable type that found none (a fresh allocation).
    pub misses: u64,
}

/// The pool's current contents and counts.
pub fn stats() -> PoolStats {
    let p = pool();
    PoolStats {
        held_bytes: p.held,
        buffers: p.buckets.values().map(|b| b.free.len()).sum(),
        hits: p.hits,
        misses: p.misses,
    }
}

/// The most bytes the pool holds.
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Sets the most bytes the pool holds (0 turns pooling off) and frees what is above it.
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
    let evicted = {
        let mut p = pool();
        evict(&mut p, bytes)
    };
    drop(evicted);
}

/// Frees every held buffer and forgets which sizes were asked for (the counts are kept).
pub fn clear() {
    let buckets = {
        let mut p = pool();
        p.held = 0;
        std::mem::take(&mut p.buckets)
    };
    drop(buckets);
}

fn bytes_of(s: &CpuStorage) -> usize {
    capacity(s) * s.dtype().size_in_bytes()
}

fn capacity(s: &CpuStorage) -> usize {
    match s {
        CpuStorage::F32(v) => v.capacity(),
        CpuStorage::F16(v) => v.capacity(),
        CpuStorage::BF16(v) => v.capacity(),
        CpuStorage::I64(v) => v.capacity(),
        CpuStorage::U32(v) => v.capacity(),
    }
}

fn dtype_key(d: DType) -> u8 {
    match d {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::BF16 => 2,
        DType::I64 => 3,
        DType::U32 => 4,
    }
}

/// Removes buffers of the least recently used sizes until at most `keep` bytes are held;
/// returns them so the caller frees them after releasing the lock.
fn evict(p: &mut Pool, keep: usize) -> Vec<CpuStorage> {
    let mut out = Vec::new();
    while p.held > keep {
        let Some((&key, _)) = p
            .buckets
            .iter()
            .filter(|(_, b)| !b.free.is_empty())
            .min_by_key(|(_, b)| b.last_used)
        else {
            break;
        };
        let bucket = p.buckets.get_mut(&key).expect("key just found");
        while p.held > keep {
            let Some(s) = bucket.free.pop() else { break };
            p.held -= bytes_of(&s);
            out.push(s);
        }
    }
    out
}

/// Gives a storage's buffer to the pool (what a dropped tensor's storage does). Empty
/// buffers, buffers larger than the limit and buffers of a (dtype, capacity) never asked
/// for are freed.
pub fn recycle(s: CpuStorage) {
    let size = bytes_of(&s);
    if size == 0 {
        return;
    }
    let limit = limit();
    let key = (dtype_key(s.dtype()), capacity(&s));
    let evicted = {
        let mut p = pool();
        if !p.buckets.contains_key(&key) {
            drop(p);
            return;
        }
        p.out = p.out.saturating_sub(size);
        if size > limit {
            drop(p);
            return;
        }
        let mut evicted = if p.held + size > limit {
            evict(&mut p, limit - size)
        } else {
            Vec::new()
        };
        p.tick += 1;
        let tick = p.tick;
        match p.buckets.get_mut(&key) {
            Some(bucket) => {
                bucket.free.push(s);
                bucket.last_used = tick;
                p.held += size;
            }
            None => evicted.push(s),
        }
        evicted
    };
    drop(evicted);
}

/// A held buffer of exactly `n` elements' capacity, if the pool has one; a miss registers
/// the size, so buffers of it are kept when returned.
fn take_storage(dtype: DType, n: usize) -> Option<CpuStorage> {
    let mut p = pool();
    p.tick += 1;
    let tick = p.tick;
    let bucket = p.buckets.entry((dtype_key(dtype), n)).or_insert(Bucket {
        free: Vec::new(),
        last_used: tick,
    });
    bucket.last_used = tick;
    let found = bucket.free.pop();
    let evicted = match &found {
        Some(s) => {
            let size = bytes_of(s);
            p.held -= size;
            p.out += size;
            p.hits += 1;
            Vec::new()
        }
        None => {
            p.out += n * dtype.size_in_bytes();
            p.misses += 1;
            let keep = p.out / IDLE_SHARE;
            evict(&mut p, keep)
        }
    };
    drop(p);
    drop(evicted);
    found
}

/// The storage's vector as `Vec<T>` when `T` is its element type.
fn unwrap_as<T: 'static>(s: CpuStorage) -> Option<Vec<T>> {
    let mut out: Option<Vec<T>> = None;
    let slot = &mut out as &mut dyn Any;
    match s {
        CpuStorage::F32(v) => put(slot, v),
        CpuStorage::F16(v) => put(slot, v),
        CpuStorage::BF16(v) => put(slot, v),
        CpuStorage::I64(v) => put(slot, v),
        CpuStorage::U32(v) => put(slot, v),
    }
    out
}

/// Stores `v` in `slot` when the slot is an `Option<Vec<U>>`.
fn put<U: 'static>(slot: &mut dyn Any, v: Vec<U>) {
    if let Some(o) = slot.downcast_mut::<Option<Vec<U>>>() {
        *o = Some(v);
    }
}

/// `v` as a storage, when `T` is one of the element types a storage holds.
fn wrap_any<T: 'static>(v: Vec<T>) -> Option<CpuStorage> {
    let mut slot = Some(v);
    let any = &mut slot as &mut dyn Any;
    if let Some(s) = any.downcast_mut::<Option<Vec<f32>>>() {
        return s.take().map(CpuStorage::F32);
    }
    if let Some(s) = any.downcast_mut::<Option<Vec<f16>>>() {
        return s.take().map(CpuStorage::F16);
    }
    if let Some(s) = any.downcast_mut::<Option<Vec<bf16>>>() {
        return s.take().map(CpuStorage::BF16);
    }
    if let Some(s) = any.downcast_mut::<Option<Vec<i64>>>() {
        return s.take().map(CpuStorage::I64);
    }
    if let Some(s) = any.downcast_mut::<Option<Vec<u32>>>() {
        return s.take().map(CpuStorage::U32);
    }
    None
}

/// The dtype of `T` when a storage can hold it.
fn dtype_of<T: 'static>() -> Option<DType> {
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    [
        (TypeId::of::<f32>(), DType::F32),
        (TypeId::of::<f16>(), DType::F16),
        (TypeId::of::<bf16>(), DType::BF16),
        (TypeId::of::<i64>(), DType::I64),
        (TypeId::of::<u32>(), DType::U32),
    ]
    .into_iter()
    .find(|(id, _)| *id == t)
    .map(|(_, d)| d)
}

/// A held buffer of capacity `n`, its old contents still in it, or a new empty one.
fn held<T: 'static>(n: usize) -> Vec<T> {
    let held = match dtype_of::<T>() {
        Some(d) if n > 0 => take_storage(d, n).and_then(unwrap_as::<T>),
        _ => None,
    };
    held.unwrap_or_else(|| Vec::with_capacity(n))
}

/// An empty vector with room for `n` elements: a held buffer of that capacity, else a new
/// one. For kernels that fill their output by pushing (`extend`).
pub fn empty<T: 'static>(n: usize) -> Vec<T> {
    let mut v = held(n);
    v.clear();
    v
}

/// `n` elements whose values are unspecified (a held buffer's old contents, or `fill` where
/// a new buffer is made): for kernels that write every element of their output before it
/// is read. The old contents are values of `T` written earlier by safe code.
pub fn for_overwrite<T: Copy + 'static>(n: usize, fill: T) -> Vec<T> {
    let mut v = held(n);
    v.truncate(n);
    fill_to(&mut v, n, fill);
    v
}

/// Grows `v` to `n` elements with copies of `fill`. A zero fill of a storage element type
/// is one `memset` (`ptr::write_bytes`): glibc's, with `rep stosb` on x86, writes whole
/// cache lines without first reading them, where `Vec::resize`'s store loop read each line
/// in before overwriting it (twice the memory traffic on a fresh buffer; the fill held
/// 6–7% of MiniLM f32 8×128's samples).
fn fill_to<T: Copy + 'static>(v: &mut Vec<T>, n: usize, fill: T) {
    let len = v.len();
    if n <= len {
        return;
    }
    // SAFETY: reads the bytes of a `Copy` value of one of the storage element types (f32,
    // f16, bf16, i64, u32), which have no padding.
    let zero = dtype_of::<T>().is_some()
        && unsafe {
            std::slice::from_raw_parts(&fill as *const T as *const u8, std::mem::size_of::<T>())
        }
        .iter()
        .all(|&b| b == 0);
    if !zero {
        v.resize(n, fill);
        return;
    }
    v.reserve(n - len);
    // SAFETY: the `reserve` above makes room for n elements; all-zero bytes are a valid
    // value of every storage element type (0.0, +0 or 0) and equal `fill`, so after the
    // write elements len..n are initialised copies of `fill`.
    unsafe {
        std::ptr::write_bytes(v.as_mut_ptr().add(len), 0, n - len);
        v.set_len(n);
    }
}

/// `n` copies of `value`, in a held buffer when one fits.
pub fn filled<T: Copy + 'static>(n: usize, value: T) -> Vec<T> {
    let mut v = empty(n);
    fill_to(&mut v, n, value);
    v
}

/// Returns a kernel's scratch vector to the pool (types a storage cannot hold are freed).
pub fn give<T: 'static>(v: Vec<T>) {
    if let Some(s) = wrap_any(v) {
        recycle(s);
    }
}

/// Asks glibc's allocator to serve blocks up to 32 MiB (its maximum) from its heap and to
/// keep freed heap memory instead of returning it to the kernel. The pool frees idle
/// buffers to stay within 1.2× the live ones; with glibc's defaults each freed block was
/// unmapped, and the next buffer of its size faulted in fresh pages (12k page faults,
/// ~48 MB, per MiniLM 8×128 pass; 0 with this setting). What the process counts as
/// allocated is unchanged: only where freed bytes wait differs. It is process-wide, so the
/// application decides: the `tally` binary calls it first thing. A no-op off glibc.
pub fn keep_freed_heap_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tuning parameters, with valid parameter numbers
    // and values; glibc serialises it against concurrent allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(test)]
mod tests {
    use super::fill_to;

    /// A zero fill (one memset) and any other fill (the store loop) both leave the kept
    /// elements alone and make exactly the requested copies: +0.0 as zero bytes, −0.0 and
    /// NaN bit for bit, integers and half floats too.
    #[test]
    fn fills_keep_the_prefix_and_copy_the_value_bit_for_bit() {
        let mut v = vec![7.5f32, -1.0];
        fill_to(&mut v, 5, 0.0);
        assert_eq!(v, [7.5, -1.0, 0.0, 0.0, 0.0]);
        for fill in [-0.0f32, f32::NAN, 3.25] {
            let mut v = vec![1.0f32];
            fill_to(&mut v, 4, fill);
            assert_eq!(v[0], 1.0);
            assert!(
                v[1..].iter().all(|x| x.to_bits() == fill.to_bits()),
                "{fill}"
            );
        }
        let mut h = vec![half::bf16::ONE];
        fill_to(&mut h, 3, half::bf16::ZERO);
        assert_eq!(h, [half::bf16::ONE, half::bf16::ZERO, half::bf16::ZERO]);
        let mut u: Vec<u32> = Vec::new();
        fill_to(&mut u, 3, 9);
        assert_eq!(u, [9, 9, 9]);
        let mut shorter = vec![1i64, 2, 3];
        fill_to(&mut shorter, 2, 0);
        assert_eq!(shorter, [1, 2, 3], "never shrinks");
    }
}
