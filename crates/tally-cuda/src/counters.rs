//! The device's counter arena: each op gets a slot of six counters (kernels/tally_count.cuh)
//! that its kernels add into, and the host reads the arena back once, when a region's ledger
//! resolves its ops' [`PendingWork`], instead of waiting for the device after every op.
//! While a region is recording, each op is also bracketed by two CUDA events, so its
//! record gets the kernels' time on the device.

use std::sync::{Arc, OnceLock};

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice, DevicePtrMut};
use tally_core::{PendingWork, Result, Work};

use crate::CudaDevice;

/// Slots in the arena (48 bytes each): when they run out, the arena is read back and
/// reused, one wait per this many ops.
pub(crate) const SLOTS: usize = 1 << 16;

/// The arena's slots: [`SLOTS`], or `TALLY_CUDA_COUNTER_SLOTS` when set to a positive
/// number. Tests set it small, so that every region wraps the arena many times
/// (`tests/tests/cuda.rs` on the emulated GPU).
fn slots() -> usize {
    std::env::var("TALLY_CUDA_COUNTER_SLOTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(SLOTS)
}

/// One filling of the arena: its counters once read back (all slots used in it).
#[derive(Debug, Default)]
struct Generation {
    read: OnceLock<std::result::Result<Vec<u64>, String>>,
}

/// The arena: device buffer (slots from `next` on are zero), next free slot, the
/// generation being filled, and why it cannot be used any more, if it cannot.
pub(crate) struct Arena {
    buf: CudaSlice<u64>,
    slots: usize,
    next: usize,
    current: Arc<Generation>,
    broken: Option<String>,
}

impl Arena {
    /// A zeroed arena on `dev`.
    pub(crate) fn new(
        dev_stream: &Arc<cudarc::driver::CudaStream>,
    ) -> std::result::Result<Arena, String> {
        let slots = slots();
        let buf = dev_stream
            .alloc_zeros::<u64>(slots * crate::COUNTERS.len())
            .map_err(|e| format!("allocating the counter arena: {e:?}"))?;
        Ok(Arena {
            buf,
            slots,
            next: 0,
            current: Arc::default(),
            broken: None,
        })
    }
}

impl Arena {
    /// Reads the slots used so far back into the current generation (waits for the
    /// device), zeroes them in one operation on the stream, and starts a new generation
    /// from slot 0. Ops then need no zeroing of their own: one stream operation per op.
    fn close_generation(&mut self, dev: &CudaDevice) {
        let n = self.next * crate::COUNTERS.len();
        let buf = &self.buf;
        self.current.read.get_or_init(|| {
            let mut host = vec![0u64; n];
            if n > 0 {
                dev.stream()
                    .memcpy_dtoh(&buf.slice(..n), &mut host)
                    .map_err(|e| format!("reading the counters back: {e:?}"))?;
            }
            Ok(host)
        });
        if n > 0 {
            if let Err(e) = dev.stream().memset_zeros(&mut self.buf.slice_mut(..n)) {
                self.broken = Some(format!("zeroing the counter arena: {e:?}"));
            }
        }
        self.current = Arc::default();
        self.next = 0;
    }
}

/// One op's slot, resolved when its region's ledger is made.
pub(crate) struct SlotWork {
    dev: Arc<CudaDevice>,
    gen: Arc<Generation>,
    slot: usize,
    events: Option<Bracket>,
}

impl std::fmt::Debug for SlotWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotWork(slot {} on {:?})", self.slot, self.dev)
    }
}

impl PendingWork for SlotWork {
    fn resolve(&self) -> Result<(Work, Option<u64>)> {
        if self.gen.read.get().is_none() {
            let mut arena = self.dev.arena.lock().unwrap_or_else(|e| e.into_inner());
            if Arc::ptr_eq(&arena.current, &self.gen) {
                arena.close_generation(&self.dev);
            }
        }
        let counters = match self.gen.read.get() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(self.dev.error("counters", e)),
            None => return Err(self.dev.error("counters", "its arena was never read back")),
        };
        let c = &counters[self.slot * 6..self.slot * 6 + 6];
        let work = Work {
            add: c[0],
            mul: c[1],
            fma: c[2],
            special: c[3],
            bytes_read: c[4],
            bytes_written: c[5],
        };
        Ok((work, event_ns(&self.events)?))
    }
}

/// The work of a build with counting compiled out (`--features uncounted`, to measure what
/// counting costs): the kernels get a null counter address and skip their flush.
#[derive(Debug)]
struct Uncounted;

impl PendingWork for Uncounted {
    fn resolve(&self) -> Result<(Work, Option<u64>)> {
        Ok((Work::ZERO, None))
    }
}

/// Runs `launches` with the address of a fresh, zeroed slot and returns the slot as the
/// op's pending work; nothing waits for the device. While a region records, the launches
/// are bracketed by CUDA events. With counting compiled out the address is null.
pub(crate) fn counted(
    dev: &Arc<CudaDevice>,
    op: &str,
    launches: impl FnOnce(u64) -> Result<()>,
) -> Result<Arc<dyn PendingWork>> {
    if !tally_core::COUNTING {
        launches(0)?;
        return Ok(Arc::new(Uncounted));
    }
    let mut arena = dev.arena.lock().unwrap_or_else(|e| e.into_inner());
    if arena.next == arena.slots {
        arena.close_generation(dev);
    }
    if let Some(why) = &arena.broken {
        return Err(dev.error(op.to_string(), why));
    }
    let slot = arena.next;
    arena.next += 1;
    let stream = dev.stream();
    let ptr = {
        let (p, _sync) = arena.buf.device_ptr_mut(stream);
        p + (slot * crate::COUNTERS.len() * 8) as u64
    };
    let gen = arena.current.clone();
    // The arena stays locked until the launches are queued: a read-back by another thread
    // (on wrapping) then comes after them on the stream.
    let events = bracket(dev, || launches(ptr))?;
    Ok(Arc::new(SlotWork {
        dev: dev.clone(),
        gen,
        slot,
        events,
    }))
}

/// Two recorded CUDA events around an op's launches; they go back to the device's pool when
/// the record that holds them is done with them.
pub(crate) struct Bracket {
    dev: Arc<CudaDevice>,
    events: Option<(CudaEvent, CudaEvent)>,
}

impl Bracket {
    /// Nanoseconds between the two events (waits for the second).
    fn ns(&self) -> Result<u64> {
        let (start, end) = self.events.as_ref().expect("taken only on drop");
        start
            .elapsed_ms(end)
            .map(|ms| (f64::from(ms) * 1e6) as u64)
            .map_err(|e| self.dev.error("event time", e))
    }
}

impl Drop for Bracket {
    fn drop(&mut self) {
        if let Some((a, b)) = self.events.take() {
            let mut pool = self.dev.events.lock().unwrap_or_else(|e| e.into_inner());
            pool.push(a);
            pool.push(b);
        }
    }
}

/// Runs `f`, bracketed by two recorded CUDA events (from the device's pool) while a region
/// is recording and kernel timing is on: the kernels' device time for the op's record. Just
/// runs it otherwise.
fn bracket(dev: &Arc<CudaDevice>, f: impl FnOnce() -> Result<()>) -> Result<Option<Bracket>> {
    if !tally_core::meter::is_recording() || !dev.kernel_timing() {
        f()?;
        return Ok(None);
    }
    let take = || -> Result<CudaEvent> {
        if let Some(e) = dev.events.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(e);
        }
        dev.context()
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| dev.error("event", e))
    };
    let b = Bracket {
        dev: dev.clone(),
        events: Some((take()?, take()?)),
    };
    let (start, end) = b.events.as_ref().expect("just set");
    start
        .record(dev.stream())
        .map_err(|e| dev.error("event", e))?;
    f()?;
    end.record(dev.stream())
        .map_err(|e| dev.error("event", e))?;
    Ok(Some(b))
}

/// Nanoseconds of an op's bracket, when it has one.
fn event_ns(events: &Option<Bracket>) -> Result<Option<u64>> {
    events.as_ref().map(Bracket::ns).transpose()
}

/// A library call's work, known from its shape, and its device time when bracketed.
struct Launched {
    dev: Arc<CudaDevice>,
    work: Work,
    events: Option<Bracket>,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Launched({:?} on {:?})", self.work, self.dev)
    }
}

impl PendingWork for Launched {
    fn resolve(&self) -> Result<(Work, Option<u64>)> {
        Ok((self.work, event_ns(&self.events)?))
    }
}

/// Runs the library call `f` (cuBLAS) whose `work` is known from its shape: a
/// `Source::Launch` result, timed on the device while a region records.
pub(crate) fn launched<T>(
    dev: &Arc<CudaDevice>,
    out: T,
    work: Work,
    f: impl FnOnce() -> Result<()>,
) -> Result<tally_core::Counted<T>> {
    let events = bracket(dev, f)?;
    let mut c = tally_core::Counted::launch(out, work);
    if events.is_some() {
        c.pending = Some(Arc::new(Launched {
            dev: dev.clone(),
            work,
            events,
        }));
    }
    Ok(c)
}
