//! The meter: which ledgers are open on this thread, and the one place records enter.
//!
//! `measure(|| …)` opens a region on the calling thread; every op dispatched on that
//! thread while it runs is recorded into it (and into any enclosing region). `scope`
//! names nested parts (`layer.3.attn`). A [`Region`] handle carries a region to other
//! threads, so work fanned out by the caller is not lost. Regions opened on different
//! threads never mix. Recording takes one uncontended lock per op call; kernels never
//! touch the meter: they return [`crate::Work`] and the dispatcher records it.
//! Each region keeps the [`Instant`] it began, so a record's `start_ns` places the call
//! on the region's timeline (what `trace` exports).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::ledger::{Ledger, Record};

struct RegionInner {
    start: Instant,
    records: Mutex<Vec<Record>>,
}

#[derive(Clone)]
struct Frame {
    region: Arc<RegionInner>,
    scope: Arc<str>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// This thread's index in records, `u32::MAX` until it first records.
    static THREAD: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// The next thread index to hand out.
static NEXT_THREAD: AtomicU32 = AtomicU32::new(0);

fn thread_index() -> u32 {
    THREAD.with(|t| {
        if t.get() == u32::MAX {
            t.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

/// Pops the frame it pushed even when the closure panics.
struct FrameGuard;

impl Drop for FrameGuard {
    fn drop(&mut self) {
        FRAMES.with(|f| f.borrow_mut().pop());
    }
}

fn push(frame: Frame) -> FrameGuard {
    FRAMES.with(|f| f.borrow_mut().push(frame));
    FrameGuard
}

fn current_scope() -> Arc<str> {
    FRAMES.with(|f| {
        f.borrow()
            .last()
            .map(|fr| fr.scope.clone())
            .unwrap_or_else(|| Arc::from(""))
    })
}

/// Runs `f` in a new region and returns its result with the ledger of every op it ran.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Ledger) {
    let region = Arc::new(RegionInner {
        start: Instant::now(),
        records: Mutex::new(Vec::with_capacity(64)),
    });
    let out = {
        let _guard = push(Frame {
            region: region.clone(),
            scope: current_scope(),
        });
        f()
    };
    let records = std::mem::take(&mut *region.records.lock().unwrap_or_else(|e| e.into_inner()));
    (out, Ledger::new(records))
}

/// [`measure`] for a fallible closure: the ledger comes back only when `f` succeeded, so
/// `let (y, ledger) = try_measure(|| model.forward(&x))?;` reads as one step.
pub fn try_measure<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<(T, Ledger), E> {
    let (out, ledger) = measure(f);
    out.map(|v| (v, ledger))
}

/// Runs `f` under the named scope, nested in the current one (`outer.name`).
/// Outside any region it simply runs `f`.
pub fn scope<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if !crate::COUNTING {
        return f();
    }
    let top = FRAMES.with(|fr| fr.borrow().last().cloned());
    match top {
        None => f(),
        Some(frame) => {
            let scope: Arc<str> = if frame.scope.is_empty() {
                Arc::from(name)
            } else {
                Arc::from(format!("{}.{name}", frame.scope))
            };
            let _guard = push(Frame {
                region: frame.region,
                scope,
            });
            f()
        }
    }
}

/// True when some region is open on this thread (a record would be kept).
pub fn is_recording() -> bool {
    crate::COUNTING && FRAMES.with(|f| !f.borrow().is_empty())
}

/// Records one op call into every region open on this thread, stamped with the
/// current scope, the thread's index and `started` (the `Instant` the dispatcher took
/// before the kernel ran) as `start_ns` on each region's own timeline. This is the
/// only entry point for records; dispatchers call it.
pub fn record(mut rec: Record, started: Instant) {
    FRAMES.with(|f| {
        let frames = f.borrow();
        let Some(top) = frames.last() else { return };
        rec.scope = top.scope.clone();
        rec.thread = thread_index();
        let mut targets: smallvec::SmallVec<[&Arc<RegionInner>; 2]> = smallvec::SmallVec::new();
        for frame in frames.iter().rev() {
            if !targets.iter().any(|d| Arc::ptr_eq(d, &frame.region)) {
                targets.push(&frame.region);
            }
        }
        let Some((last, rest)) = targets.split_last() else {
            return;
        };
        let since = |region: &RegionInner| {
            started.saturating_duration_since(region.start).as_nanos() as u64
        };
        for region in rest {
            let mut r = rec.clone();
            r.start_ns = since(region);
            region
                .records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r);
        }
        rec.start_ns = since(last);
        last.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rec);
    });
}

/// A handle on the innermost open region and scope of the thread that took it, to be
/// entered from another thread so that work done there is recorded in the same ledger.
#[derive(Clone)]
pub struct Region {
    frame: Frame,
}

impl Region {
    /// The region open on this thread, if any.
    pub fn current() -> Option<Region> {
        FRAMES.with(|f| f.borrow().last().cloned().map(|frame| Region { frame }))
    }

    /// Runs `f` on this thread as if inside the region and scope the handle was taken in.
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = push(self.frame.clone());
        f()
    }
}
