//! The meter: which ledgers are open on this thread, and the one place records enter.
//!
//! `measure(|| …)` opens a region on the calling thread; every op dispatched on that
//! thread while it runs is recorded into it (and into any enclosing region). `scope`
//! names nested parts (`layer.3.attn`). A [`Region`] handle carries the regions open on
//! one thread to another (a model pass moved onto a pool worker), so work done there is
//! not lost, and entering it sets aside whatever that thread had open. Regions opened on different
//! threads never mix. Recording takes one uncontended lock per op call; kernels never
//! touch the meter: they return [`crate::Work`] and the dispatcher records it.
//! Each region keeps the [`Stamp`] it began, so a record's `start_ns` places the call
//! on the region's timeline (what `trace` exports).
//!
//! Recording is on every kernel call's path, so it is kept cheap: the clock is the TSC
//! where it is invariant (`quanta`; the OS clock otherwise), and scope names are built
//! once per thread and reused (`layer.3.ffn` is not formatted again on every pass).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::ledger::{Ledger, Record};

/// A point in time as the meter's clock reads it.
pub type Stamp = quanta::Instant;

/// The meter's clock now: what dispatchers stamp a kernel call's start with.
pub fn now() -> Stamp {
    quanta::Instant::now()
}

struct RegionInner {
    start: Stamp,
    records: Mutex<Vec<Record>>,
}

#[derive(Clone)]
struct Frame {
    region: Arc<RegionInner>,
    scope: Arc<str>,
}

/// Scope names made on this thread: by parent scope (its address, and the parent itself,
/// held so that the address cannot be reused), the child's name and its full path.
type ScopeNames = HashMap<usize, (Arc<str>, HashMap<Box<str>, Arc<str>>)>;

/// Most scope names a thread keeps before it forgets them all and starts again.
const SCOPE_NAMES_MAX: usize = 4096;

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// The top scope, `""`, one allocation per thread.
    static ROOT: Arc<str> = Arc::from("");
    static SCOPE_NAMES: RefCell<(ScopeNames, usize)> = RefCell::new((HashMap::new(), 0));
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
            .unwrap_or_else(|| ROOT.with(Arc::clone))
    })
}

/// The scope `name` nested in `parent` (`parent.name`, or `name` at the top), made once
/// per thread and then reused.
fn child_scope(parent: &Arc<str>, name: &str) -> Arc<str> {
    SCOPE_NAMES.with(|cell| {
        let (names, count) = &mut *cell.borrow_mut();
        let key = Arc::as_ptr(parent) as *const u8 as usize;
        if let Some(found) = names.get(&key).and_then(|(_, kids)| kids.get(name)) {
            return found.clone();
        }
        if *count >= SCOPE_NAMES_MAX {
            names.clear();
            *count = 0;
        }
        let path: Arc<str> = if parent.is_empty() {
            Arc::from(name)
        } else {
            Arc::from(format!("{parent}.{name}"))
        };
        names
            .entry(key)
            .or_insert_with(|| (parent.clone(), HashMap::new()))
            .1
            .insert(name.into(), path.clone());
        *count += 1;
        path
    })
}

/// Runs `f` in a new region and returns its result with the ledger of every op it ran.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Ledger) {
    let region = Arc::new(RegionInner {
        start: now(),
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
            let scope = child_scope(&frame.scope, name);
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
/// current scope, the thread's index and `started` (the [`Stamp`] the dispatcher took
/// with [`now`] before the kernel ran) as `start_ns` on each region's own timeline. This is the
/// only entry point for records; dispatchers call it.
pub fn record(mut rec: Record, started: Stamp) {
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

/// A handle on the regions and scope open on the thread that took it, to be entered from
/// another thread so that work done there is recorded in the same ledgers (the innermost
/// and every enclosing one, as on the thread that took it).
#[derive(Clone)]
pub struct Region {
    /// The thread's frames, outermost first.
    frames: Vec<Frame>,
}

impl Region {
    /// The regions open on this thread, if any.
    pub fn current() -> Option<Region> {
        FRAMES.with(|f| {
            let frames = f.borrow();
            (!frames.is_empty()).then(|| Region {
                frames: frames.clone(),
            })
        })
    }

    /// The regions open on this thread, none included: entering a handle taken where no
    /// region was open sets aside the entering thread's regions, so that nothing done
    /// inside is recorded in them. What a job handed to another thread should carry.
    pub fn here() -> Region {
        Region::current().unwrap_or(Region { frames: Vec::new() })
    }

    /// Runs `f` on this thread inside the regions and scope the handle was taken in, and
    /// only those: regions this thread has open are set aside until `f` returns. A pool
    /// worker waiting inside one pass may run another pass's job (work stealing); that
    /// job's ops belong to its own ledgers, not to the pass it interrupted.
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let saved = FRAMES.with(|fr| std::mem::replace(&mut *fr.borrow_mut(), self.frames.clone()));
        let _restore = RestoreFrames(Some(saved));
        f()
    }
}

/// Puts a thread's own frames back when a [`Region::enter`] ends, even by a panic.
struct RestoreFrames(Option<Vec<Frame>>);

impl Drop for RestoreFrames {
    fn drop(&mut self) {
        if let Some(frames) = self.0.take() {
            FRAMES.with(|fr| *fr.borrow_mut() = frames);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_are_made_once_and_nest() {
        let root = ROOT.with(Arc::clone);
        let a = child_scope(&root, "layer.0");
        let again = child_scope(&root, "layer.0");
        assert_eq!(&*a, "layer.0");
        assert!(
            Arc::ptr_eq(&a, &again),
            "the second lookup reuses the first name"
        );
        let b = child_scope(&a, "attn");
        assert_eq!(&*b, "layer.0.attn");
        // Another parent with the same text is another key, and gives the same path.
        let other: Arc<str> = Arc::from("layer.0");
        assert_eq!(&*child_scope(&other, "attn"), "layer.0.attn");
        assert_eq!(&*child_scope(&root, "layer.1"), "layer.1");
    }

    #[test]
    fn the_scope_cache_forgets_when_full_and_stays_correct() {
        let root = ROOT.with(Arc::clone);
        for i in 0..SCOPE_NAMES_MAX + 10 {
            let name = format!("s{i}");
            assert_eq!(&*child_scope(&root, &name), name.as_str());
        }
        SCOPE_NAMES.with(|c| assert!(c.borrow().1 <= SCOPE_NAMES_MAX));
        assert_eq!(&*child_scope(&root, "s0"), "s0");
    }
}
