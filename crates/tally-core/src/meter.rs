//! The meter: which ledgers are open on this thread, and the one place records enter.
//!
//! `measure(|| …)` opens a region on the calling thread; every op dispatched on that
//! thread while it runs is recorded into it (and into any enclosing region). `scope`
//! names nested parts (`layer.3.attn`). A [`Region`] handle carries the regions open on
//! one thread to another (a model pass moved onto a pool worker), so work done there is
//! not lost, and entering it sets aside whatever that thread had open. Regions opened on different
//! threads never mix. Kernels never touch the meter: they return [`crate::Work`] and the
//! dispatcher records it. Each region keeps the [`Stamp`] it began, so a record's
//! `start_ns` places the call on the region's timeline (what `trace` exports), and a
//! ledger lists its records in the order the calls began.
//!
//! Recording is on every kernel call's path, so it is kept cheap: the clock is read raw
//! (the TSC where it is invariant, through `quanta`; the OS clock otherwise) and scaled
//! only when two stamps are compared; a call is held on its own thread as a finished
//! record, with no lock taken and one reference count (its scope name's) touched, until
//! the thread's regions change, then handed to them in one batch (a region's only batch
//! becomes its list as it is, with no copy); a scope entered touches no region; and scope
//! names are built once per thread and reused (`layer.3.ffn` is not formatted again on
//! every pass).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::ledger::{Call, Ledger, Record};

/// A point in time as the meter's clock reads it: a raw count of `quanta`'s clock (the
/// TSC where it is invariant, the OS clock otherwise), scaled to nanoseconds only when two
/// are compared. Reading it raw costs about half what `quanta::Instant::now` does, and a
/// recorded kernel call reads it twice.
#[derive(Clone, Copy, Debug)]
pub struct Stamp(u64);

impl Stamp {
    /// Nanoseconds from `earlier` to this stamp (0 if `earlier` is later).
    pub fn ns_since(self, earlier: Stamp) -> u64 {
        if self.0 <= earlier.0 {
            0
        } else {
            clock().delta_as_nanos(earlier.0, self.0)
        }
    }

    /// Nanoseconds from this stamp to now.
    pub fn elapsed_ns(self) -> u64 {
        now().ns_since(self)
    }
}

/// The process's clock, calibrated once.
fn clock() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// The meter's clock now: what dispatchers stamp a kernel call's start with.
#[inline]
pub fn now() -> Stamp {
    Stamp(clock().raw())
}

struct RegionInner {
    start: Stamp,
    records: Mutex<Records>,
}

/// A region's records and how many batches (flushes of one thread's calls) made them.
#[derive(Default)]
struct Records {
    list: Vec<Record>,
    batches: u32,
}

#[derive(Clone)]
struct Frame {
    /// The region this frame opened; `None` for a scope, which records into the regions
    /// of the frames below it (so entering a scope touches no region's reference count).
    region: Option<Arc<RegionInner>>,
    scope: Arc<str>,
}

/// What the meter keeps per thread. Calls are held here as records, lock-free, and moved
/// into their regions in one batch whenever the set of regions open on the thread changes
/// (a region opens or closes, a handle is entered or left). In a SmolLM2 decode step a
/// kernel call's record otherwise took a lock, four reference counts and a region's list,
/// each a cold cache line after a kernel that streamed megabytes of weights: +2.1% against
/// the same passes unrecorded.
#[derive(Default)]
struct ThreadMeter {
    /// Open regions and scopes, outermost first.
    frames: Vec<Frame>,
    /// Calls made since the regions last changed (all belong to the regions in `frames`),
    /// complete but for `start_ns`, which holds the raw [`Stamp`] the call began at until
    /// the flush places it on each region's timeline.
    held: Vec<Record>,
    /// This thread's index in records, once it has recorded.
    thread: Option<u32>,
}

impl ThreadMeter {
    /// This thread's index in records, handed out on first use.
    fn thread(&mut self) -> u32 {
        *self.thread.get_or_insert_with(thread_index)
    }

    /// Moves the held calls into every distinct region open on this thread (innermost
    /// first), each placed on that region's timeline: copied into the outer regions, and
    /// moved into the innermost in one block.
    fn flush(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let mut regions: smallvec::SmallVec<[&Arc<RegionInner>; 2]> = smallvec::SmallVec::new();
        for region in self.frames.iter().rev().filter_map(|f| f.region.as_ref()) {
            if !regions.iter().any(|r| Arc::ptr_eq(r, region)) {
                regions.push(region);
            }
        }
        let held = &mut self.held;
        let Some((innermost, outer)) = regions.split_first() else {
            held.clear();
            return;
        };
        for region in outer {
            let mut records = lock(region);
            records.batches += 1;
            records.list.reserve(held.len());
            for r in held.iter() {
                let mut placed = r.clone();
                placed.start_ns = Stamp(r.start_ns).ns_since(region.start);
                records.list.push(placed);
            }
        }
        for r in held.iter_mut() {
            r.start_ns = Stamp(r.start_ns).ns_since(innermost.start);
        }
        let mut records = lock(innermost);
        records.batches += 1;
        let room = records.list.capacity();
        if records.list.is_empty() && room >= held.len() && room <= 2 * HELD_MAX {
            // The common case, a region's one batch: the held records become its list,
            // and the thread holds its next calls in the room the region had set aside
            // (no more than a thread may keep).
            std::mem::swap(&mut records.list, held);
        } else {
            // The emptied buffer keeps its room for the next batch.
            records.list.append(held);
        }
    }
}

/// A region's records, locked (a panic elsewhere does not lose them).
fn lock(region: &RegionInner) -> std::sync::MutexGuard<'_, Records> {
    region.records.lock().unwrap_or_else(|e| e.into_inner())
}

/// Scope names made on this thread: by parent scope (its address, and the parent itself,
/// held so that the address cannot be reused), the child's name and its full path.
type ScopeNames = FastMap<usize, (Arc<str>, FastMap<Box<str>, Arc<str>>)>;

/// A map hashed with foldhash: scope lookups hash short names on every scope entered, where
/// the standard SipHash cost more than the rest of the lookup.
type FastMap<K, V> = foldhash::HashMap<K, V>;

/// Most scope names a thread keeps before it forgets them all and starts again.
const SCOPE_NAMES_MAX: usize = 4096;

thread_local! {
    static METER: RefCell<ThreadMeter> = RefCell::new(ThreadMeter::default());
    /// The top scope, `""`, one allocation per thread.
    static ROOT: Arc<str> = Arc::from("");
    static SCOPE_NAMES: RefCell<(ScopeNames, usize)> = RefCell::new((ScopeNames::default(), 0));
    /// How many records the last region opened on this thread ended with: the next one
    /// starts with room for as many, so that a model's repeated passes never regrow (and
    /// copy) their record list mid-pass.
    static RECORDS_HINT: Cell<usize> = const { Cell::new(0) };
}

/// Fewest records a region starts with room for.
const RECORDS_MIN: usize = 64;

/// Most calls a thread holds before it moves them into their regions anyway, so that a
/// long region (a whole dataset measured at once) neither doubles its records' memory at
/// the end nor leaves a thread holding that much room afterwards. A model pass makes fewer
/// (SmolLM2: 363 per decode step).
const HELD_MAX: usize = 1024;

/// The next thread index to hand out.
static NEXT_THREAD: AtomicU32 = AtomicU32::new(0);

/// A new thread index: each thread's meter takes one when it first records.
fn thread_index() -> u32 {
    NEXT_THREAD.fetch_add(1, Ordering::Relaxed)
}

/// Pops the frame it pushed even when the closure panics; a region's frame first moves the
/// calls held for it into its regions.
struct FrameGuard {
    opens_region: bool,
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        METER.with(|m| {
            let mut m = m.borrow_mut();
            if self.opens_region {
                m.flush();
            }
            m.frames.pop();
        });
    }
}

fn current_scope() -> Arc<str> {
    METER.with(|m| {
        m.borrow()
            .frames
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
            .or_insert_with(|| (parent.clone(), FastMap::default()))
            .1
            .insert(name.into(), path.clone());
        *count += 1;
        path
    })
}

/// Runs `f` in a new region and returns its result with the ledger of every op it ran.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Ledger) {
    let room = RECORDS_HINT.with(Cell::get).max(RECORDS_MIN);
    let region = Arc::new(RegionInner {
        start: now(),
        records: Mutex::new(Records {
            list: Vec::with_capacity(room),
            batches: 0,
        }),
    });
    let out = {
        let scope = current_scope();
        METER.with(|m| {
            let mut m = m.borrow_mut();
            // Calls held so far belong to the regions open before this one.
            m.flush();
            m.frames.push(Frame {
                region: Some(region.clone()),
                scope,
            });
        });
        let _guard = FrameGuard { opens_region: true };
        f()
    };
    let Records { mut list, batches } = std::mem::take(&mut *lock(&region));
    if batches > 1 {
        // Batches from several threads (or around an entered handle): back in the order
        // the calls began.
        list.sort_by_key(|r| r.start_ns);
    }
    RECORDS_HINT.with(|h| h.set(list.len()));
    (out, Ledger::new(list))
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
    let entered = METER.with(|m| {
        let mut m = m.borrow_mut();
        let Some(top) = m.frames.last() else {
            return false;
        };
        let scope = child_scope(&top.scope, name);
        m.frames.push(Frame {
            region: None,
            scope,
        });
        true
    });
    if !entered {
        return f();
    }
    let _guard = FrameGuard {
        opens_region: false,
    };
    f()
}

/// True when some region is open on this thread (a record would be kept).
pub fn is_recording() -> bool {
    crate::COUNTING && METER.with(|m| !m.borrow().frames.is_empty())
}

/// Records one op call into every region open on this thread, under the current scope,
/// with the thread's index, and with `started` (the [`Stamp`] the dispatcher took with
/// [`now`] before the kernel ran) as `start_ns` on each region's own timeline. The call,
/// which `make` builds only when a region is open, is held on this thread until its regions
/// change (see `ThreadMeter`), so it reaches a region's ledger by the time that region's
/// `measure` returns. This is the only entry point for records; dispatchers call it.
/// `make` runs while the thread's meter is borrowed, so it must only build the call: a
/// `make` that opens a scope or records would panic on the second borrow.
#[inline]
pub fn record(started: Stamp, make: impl FnOnce() -> Call) {
    METER.with(|m| {
        let mut m = m.borrow_mut();
        let Some(top) = m.frames.last() else { return };
        let scope = top.scope.clone();
        let thread = m.thread();
        // Room first, then the record built straight into it (one built before the push
        // was copied in: a third of what recording cost a small kernel). Its start is the
        // raw stamp until the flush places it on each region's timeline.
        m.held.reserve(1);
        m.held.spare_capacity_mut()[0].write(make().placed(scope, thread, started.0));
        let len = m.held.len() + 1;
        // SAFETY: slot `len - 1` (the first spare one) was just written.
        unsafe { m.held.set_len(len) };
        if len >= HELD_MAX {
            m.flush();
        }
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
        METER.with(|m| {
            let m = m.borrow();
            (!m.frames.is_empty()).then(|| Region {
                frames: m.frames.clone(),
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
        let saved = METER.with(|m| swap_frames(&mut m.borrow_mut(), self.frames.clone()));
        let _restore = RestoreFrames(Some(saved));
        f()
    }
}

/// Moves the calls held for the current frames into their regions, then replaces the
/// frames with `frames`; returns the old frames.
fn swap_frames(m: &mut ThreadMeter, frames: Vec<Frame>) -> Vec<Frame> {
    m.flush();
    std::mem::replace(&mut m.frames, frames)
}

/// Puts a thread's own frames back when a [`Region::enter`] ends, even by a panic, after
/// moving the calls made inside into the entered regions.
struct RestoreFrames(Option<Vec<Frame>>);

impl Drop for RestoreFrames {
    fn drop(&mut self) {
        if let Some(frames) = self.0.take() {
            METER.with(|m| swap_frames(&mut m.borrow_mut(), frames));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call as a dispatcher would hand it over (an f32 relu over `n` elements).
    fn call(n: usize) -> Call {
        Call {
            op: crate::OpId::Relu,
            dtype: crate::DType::F32,
            device: crate::Device::Cpu,
            inputs: smallvec::smallvec![crate::Shape::new([n])],
            output: crate::Shape::new([n]),
            source: crate::Source::Executed,
            work: crate::Work::ZERO,
            analytic: crate::Work::ZERO,
            elapsed_ns: 1,
            pending: None,
        }
    }

    /// A region longer than a thread holds: every call comes back, in order, under its
    /// scope, and the thread keeps bounded room.
    #[test]
    fn a_long_region_keeps_every_call_and_bounded_room() {
        let calls = 3 * HELD_MAX + 7;
        let ((), ledger) = measure(|| {
            for i in 0..calls {
                scope(if i % 2 == 0 { "even" } else { "odd" }, || {
                    record(now(), || call(i + 1))
                });
            }
            for _ in 0..4096 {
                scope("empty", || ());
            }
            // Scopes entered and left leave no frame behind.
            METER.with(|m| assert_eq!(m.borrow().frames.len(), 1));
            record(now(), || call(1));
        });
        let records = ledger.records();
        assert_eq!(records.len(), calls + 1);
        for (i, r) in records[..calls].iter().enumerate() {
            assert_eq!(r.output.dims(), [i + 1], "call {i} in its place");
            assert_eq!(&*r.scope, if i % 2 == 0 { "even" } else { "odd" });
        }
        assert_eq!(&*records[calls].scope, "");
        assert!(records.windows(2).all(|w| w[0].start_ns <= w[1].start_ns));
        METER.with(|m| {
            let m = m.borrow();
            assert!(m.held.is_empty() && m.held.capacity() <= 2 * HELD_MAX);
            assert!(m.frames.is_empty(), "the region's frame is gone");
        });
    }

    /// Regions one after another on a thread: each ledger holds its own calls only, though
    /// a region's list and the thread's held room trade places, and after a long region
    /// (whose size the next one reserves) the thread still keeps bounded room.
    #[test]
    fn regions_in_turn_keep_their_own_calls_and_the_thread_bounded_room() {
        let sizes = |n: usize| -> Vec<usize> {
            let ((), ledger) = measure(|| (1..=n).for_each(|i| record(now(), || call(i))));
            let dims = ledger.records().iter().map(|r| r.output.dims()[0]);
            dims.collect()
        };
        assert_eq!(sizes(3), [1, 2, 3]);
        assert_eq!(sizes(2), [1, 2]);
        assert_eq!(sizes(5 * HELD_MAX + 3).len(), 5 * HELD_MAX + 3);
        assert_eq!(sizes(4), [1, 2, 3, 4]);
        METER.with(|m| assert!(m.borrow().held.capacity() <= 2 * HELD_MAX));
        let ((outer_only, inner), outer) = measure(|| {
            record(now(), || call(7));
            let ((), inner) = measure(|| record(now(), || call(8)));
            let nested = sizes(1);
            record(now(), || call(9));
            (nested, inner)
        });
        assert_eq!(outer_only, [1]);
        let dims = |l: &Ledger| {
            l.records()
                .iter()
                .map(|r| r.output.dims()[0])
                .collect::<Vec<_>>()
        };
        assert_eq!(dims(&inner), [8]);
        assert_eq!(dims(&outer), [7, 8, 1, 9]);
        assert_eq!(
            sizes(2),
            [1, 2],
            "no call is left behind for the next region"
        );
    }

    #[test]
    fn stamps_measure_forward_and_never_backward() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now();
        let ns = b.ns_since(a);
        assert!(
            (1_500_000..1_000_000_000).contains(&ns),
            "2 ms sleep read as {ns} ns"
        );
        assert_eq!(
            a.ns_since(b),
            0,
            "an earlier stamp is no time after a later one"
        );
        assert!(a.elapsed_ns() >= ns);
    }

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
