//! Handles as JS numbers, and every conversion between them and Rust values.
//! No other module casts a handle.
//!
//! A handle is the address of a `Box`: below 2^53 on every 64-bit platform
//! Node runs on, so a double carries it exactly. The JS layer keeps handles
//! in private class fields, passes them only to this module, and frees each
//! exactly once from a `FinalizationRegistry`, after which no JS code can
//! reach it.
//!
//! Invariants (one set per JS environment, kept on its thread):
//! 1. Every live handle of an environment is in that environment's
//!    [`LiveSet`], at the index its box records; handles never move between
//!    environments (a context handed to another environment gets a new one).
//! 2. A handle leaves its set exactly once: when the JS layer releases it,
//!    or when the environment shuts down ([`free_all`]), whichever is first.
//!    After [`free_all`] the JS layer can run no more code in the
//!    environment, and [`is_closed`] makes a late release a no-op.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use polyctx::{AnyCancelFunc, Context, ForeignValue, Key};

/// What one JS `Context` wrapper owns.
pub(crate) struct Entry {
    pub(crate) ctx: Context,
    /// The context's cancel function, if it has one. It lives with the
    /// context's wrapper: the JS cancel function holds the wrapper.
    pub(crate) cancel: Option<AnyCancelFunc>,
    /// The id of the watch behind the wrapper's `signal`, 0 if none.
    pub(crate) watch: Cell<f64>,
    /// The deadline in epoch milliseconds when the core holds it clamped at
    /// its clock's zero (a deadline before the machine booted), else NaN.
    pub(crate) early_deadline: f64,
}

/// A value behind a handle, and its place in its environment's [`LiveSet`].
struct Boxed<T> {
    value: T,
    index: Cell<usize>,
}

/// The live handles of one kind in this thread's environment.
struct LiveSet<T: 'static> {
    boxes: RefCell<Vec<*mut Boxed<T>>>,
    /// Process-wide count, for the test hooks (every environment's, while live).
    count: &'static AtomicUsize,
}

impl<T> LiveSet<T> {
    fn insert(&self, value: T) -> f64 {
        let mut boxes = self.boxes.borrow_mut();
        let raw = Box::into_raw(Box::new(Boxed {
            value,
            index: Cell::new(boxes.len()),
        }));
        boxes.push(raw);
        self.count.fetch_add(1, Ordering::Relaxed);
        into_number(raw)
    }

    /// # Safety
    /// `h` must be a live handle from this set's `insert` (invariant 1).
    unsafe fn remove(&self, h: f64) -> T {
        let raw = from_number::<Boxed<T>>(h);
        // SAFETY: as the caller promises, `raw` is live and in `boxes`.
        let boxed = unsafe { Box::from_raw(raw) };
        let mut boxes = self.boxes.borrow_mut();
        let i = boxed.index.get();
        debug_assert!(std::ptr::eq(boxes[i], raw), "a handle's index is its place in the set");
        boxes.swap_remove(i);
        if let Some(&moved) = boxes.get(i) {
            // SAFETY: every pointer in `boxes` is live (invariant 1).
            unsafe { (*moved).index.set(i) };
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        boxed.value
    }

    /// Every value still live, taken out of the set (the caller drops them
    /// outside the borrow: dropping a context may release held values).
    fn take_all(&self) -> Vec<T> {
        let boxes = std::mem::take(&mut *self.boxes.borrow_mut());
        self.count.fetch_sub(boxes.len(), Ordering::Relaxed);
        boxes
            .into_iter()
            // SAFETY: every pointer in `boxes` is live (invariant 1), and
            // leaves the set here, once (invariant 2).
            .map(|raw| unsafe { Box::from_raw(raw) }.value)
            .collect()
    }
}

static ENTRY_COUNT: AtomicUsize = AtomicUsize::new(0);
static KEY_COUNT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ENTRIES: LiveSet<Entry> = const {
        LiveSet { boxes: RefCell::new(Vec::new()), count: &ENTRY_COUNT }
    };
    static KEYS: LiveSet<Key<ForeignValue>> = const {
        LiveSet { boxes: RefCell::new(Vec::new()), count: &KEY_COUNT }
    };
    /// Set once this thread's environment has shut down (invariant 2).
    static CLOSED: Cell<bool> = const { Cell::new(false) };
}

impl Entry {
    pub(crate) fn into_handle(ctx: Context, cancel: Option<AnyCancelFunc>, early_deadline: f64) -> f64 {
        crate::events::external(ENTRY_BYTES);
        ENTRIES.with(|live| {
            live.insert(Entry {
                ctx,
                cancel,
                watch: Cell::new(0.0),
                early_deadline,
            })
        })
    }

    /// # Safety
    /// `h` must be a live handle from [`Entry::into_handle`]; it is dead
    /// afterwards. Returns `None` once the environment has shut down (its
    /// handles are then all freed already).
    pub(crate) unsafe fn from_raw(h: f64) -> Option<Entry> {
        if is_closed() {
            return None;
        }
        crate::events::external(-ENTRY_BYTES);
        // SAFETY: as the caller promises.
        Some(ENTRIES.with(|live| unsafe { live.remove(h) }))
    }
}

/// What a wrapper keeps alive natively, roughly: its entry and the core's
/// node (two allocations).
const ENTRY_BYTES: i64 = (std::mem::size_of::<Boxed<Entry>>() + 112) as i64;

/// The entry behind a live handle.
pub(crate) fn entry(h: f64) -> &'static Entry {
    // SAFETY: the JS layer passes only live handles (module docs), and a
    // handle is freed only once its wrapper is unreachable, so no call that
    // borrows it can still be running.
    unsafe { &(*from_number::<Boxed<Entry>>(h)).value }
}

pub(crate) fn key_into_raw(key: Key<ForeignValue>) -> f64 {
    KEYS.with(|live| live.insert(key))
}

/// The key behind a live key handle.
pub(crate) fn key(k: f64) -> &'static Key<ForeignValue> {
    // SAFETY: as for `entry`.
    unsafe { &(*from_number::<Boxed<Key<ForeignValue>>>(k)).value }
}

/// # Safety
/// `k` must be a live key handle; it is dead afterwards. `None` as for
/// [`Entry::from_raw`].
pub(crate) unsafe fn key_from_raw(k: f64) -> Option<Key<ForeignValue>> {
    // SAFETY: as the caller promises.
    (!is_closed()).then(|| KEYS.with(|live| unsafe { live.remove(k) }))
}

/// Frees every handle of this thread's environment, which is shutting down
/// (`events::shutdown`); later releases do nothing (invariant 2).
pub(crate) fn free_all() {
    close();
    let entries = ENTRIES.with(LiveSet::take_all);
    let keys = KEYS.with(LiveSet::take_all);
    drop((entries, keys));
}

/// Makes later releases do nothing, without freeing (the process is exiting).
pub(crate) fn close() {
    CLOSED.with(|c| c.set(true));
}

/// A new environment on this thread (`events::init`).
pub(crate) fn open() {
    CLOSED.with(|c| c.set(false));
}

fn is_closed() -> bool {
    CLOSED.try_with(Cell::get).unwrap_or(true)
}

/// Live context and key handles, process-wide (the test hooks).
pub(crate) fn live_counts() -> (usize, usize) {
    (ENTRY_COUNT.load(Ordering::Relaxed), KEY_COUNT.load(Ordering::Relaxed))
}

fn into_number<T>(p: *mut T) -> f64 {
    let addr = p as usize;
    debug_assert!(addr < (1 << 53), "a handle must fit a double exactly");
    addr as f64
}

fn from_number<T>(h: f64) -> *mut T {
    debug_assert!(h > 0.0 && h.fract() == 0.0, "not a handle: {h}");
    h as usize as *mut T
}
