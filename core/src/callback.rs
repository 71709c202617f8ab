//! Running code when a context is done. One mechanism serves four uses:
//! on-done callbacks (run on the cancelling thread; bindings use them to hop
//! onto their event loops), Go's `AfterFunc` (run on the after-func pool),
//! async waiters (`Done` wakes a task) and blocked threads (unparked).
//!
//! Each registration is a [`Slot`] listed on its context's signal node
//! until the node is done (the walk takes the list) or it is stopped. The
//! slot's action is taken exactly once, by an atomic swap: whoever wins
//! (the walk, or `stop`) decides its fate, with no lock, so a slot can never
//! be left locked by a thread that a `fork()` did not copy.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Waker;

use crate::node::NodeRef;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::thread::Thread;
use crate::{pool, tree, Context};

pub(crate) type Callback = Box<dyn FnOnce() + Send>;

/// What a slot does when its context is done.
pub(crate) enum Action {
    /// Run on the thread that cancels ([`Context::on_done`]).
    Call(Callback),
    /// Run on the after-func pool ([`after_func`]).
    Spawn(Callback),
    /// Wake a task waiting on [`Context::done`].
    Wake(Waker),
    /// Unpark a thread blocked in a wait.
    Unpark(Thread),
}

/// One registration.
pub(crate) struct Slot {
    taken: AtomicBool,
    /// Read or written only by the thread that set `taken`, or by `Drop`.
    action: UnsafeCell<Option<Action>>,
    /// Position in the signal node's callback list; guarded by that node's
    /// lock and meaningful only while the node is live.
    pub(crate) index: AtomicUsize,
    /// The signal node whose cancellation runs the action. A pending slot
    /// keeps it alive, so that an ancestor's cancellation still reaches it
    /// after every other handle is dropped.
    node: Option<NodeRef>,
}

// SAFETY: `action` is `Send`, and it is touched only by the one thread that
// won the swap of `taken` (or by `Drop`, which has exclusive access), so
// sharing a `Slot` never shares the action.
unsafe impl Sync for Slot {}

impl Slot {
    /// The action, to the first caller only.
    pub(crate) fn take(&self) -> Option<Action> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: only the thread whose swap found `false` gets here, once.
        unsafe { (*self.action.get()).take() }
    }
}

/// Registers `action` on `signal` (a context's signal node, or `None` for a
/// context that is never done). If the node is already done, the action runs
/// at once, on this thread (or the pool, for `Spawn`).
pub(crate) fn register(signal: Option<NodeRef>, action: Action) -> Registration {
    let slot = Arc::new(Slot {
        taken: AtomicBool::new(false),
        action: UnsafeCell::new(Some(action)),
        index: AtomicUsize::new(0),
        node: signal,
    });
    // Never done: the slot is kept only so that `stop` reports, as Go's
    // does, that it kept the function from running.
    if let Some(node) = &slot.node {
        if !tree::list(node, &slot) {
            run_all(vec![slot.clone()]);
        }
    }
    Registration { slot }
}

/// A waiter's registration: a slot listed on `signal` that does not hold a
/// count on it, because the waiter (a `Done`, a blocked thread) holds the
/// node itself for as long as it waits. `None` if `signal` is already done.
pub(crate) fn register_waiter(signal: &NodeRef, action: Action) -> Option<Arc<Slot>> {
    let slot = Arc::new(Slot {
        taken: AtomicBool::new(false),
        action: UnsafeCell::new(Some(action)),
        index: AtomicUsize::new(0),
        node: None,
    });
    tree::list(signal, &slot).then_some(slot)
}

/// Unregisters a waiter's slot from `signal`, the node it was listed on.
pub(crate) fn stop_waiter(signal: &NodeRef, slot: &Arc<Slot>) {
    // Taken by the walk: the node is done and its list gone.
    if slot.take().is_some() {
        tree::unlist(signal, slot);
    }
}

/// Runs the actions of slots taken from a done node, with no lock held:
/// wakes and unparks first, then hands after-funcs to the pool in one batch,
/// then runs on-done callbacks in order. A panicking callback does not stop
/// the others; the first panic is resumed once all have run.
pub(crate) fn run_all(slots: Vec<Arc<Slot>>) {
    if slots.is_empty() {
        return;
    }
    let mut calls = Vec::new();
    let mut spawns = Vec::new();
    let mut panic = None;
    for slot in &slots {
        match slot.take() {
            Some(Action::Call(f)) => calls.push(f),
            Some(Action::Spawn(f)) => spawns.push(f),
            Some(Action::Wake(w)) => {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| w.wake())) {
                    panic.get_or_insert(payload);
                }
            }
            Some(Action::Unpark(t)) => t.unpark(),
            None => {} // stopped first
        }
    }
    if !spawns.is_empty() {
        pool::submit(spawns);
    }
    for f in calls {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            panic.get_or_insert(payload);
        }
    }
    // Slots may hold the last count on their nodes: freed here, unlocked.
    drop(slots);
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

/// A callback registered with [`Context::on_done`]. Dropping it does not
/// unregister the callback; [`stop`](Registration::stop) does.
pub struct Registration {
    slot: Arc<Slot>,
}

impl Registration {
    /// Unregisters the callback. Returns true if this kept it from running;
    /// false if it has already been started, or was already stopped.
    pub fn stop(&self) -> bool {
        let Some(action) = self.slot.take() else {
            return false;
        };
        if let Some(node) = &self.slot.node {
            tree::unlist(node, &self.slot);
        }
        // The callback's captures are dropped here, with no lock held.
        drop(action);
        true
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("pending", &!self.slot.taken.load(Ordering::Relaxed))
            .finish()
    }
}

/// The handle returned by [`after_func`].
#[derive(Debug)]
pub struct AfterFunc(Registration);

impl AfterFunc {
    /// Stops the association of the context with `f` (Go's `stop`). Returns
    /// true if this kept `f` from being started; false if `f` has already been
    /// started, or was already stopped. Does not wait for a running `f` to
    /// finish.
    pub fn stop(&self) -> bool {
        self.0.stop()
    }
}

/// Arranges to call `f` after `ctx` is done; if it already is, `f` starts
/// at once (Go's `AfterFunc`). Each call is independent.
///
/// `f` runs on polyctx's after-func pool, never on the thread that cancels
/// (unless no thread can be started at all): like a goroutine, a function
/// that blocks does not hold up the others for long, because the pool adds a
/// thread when all of its threads have made no progress for a millisecond.
/// Idle threads exit after a few seconds.
///
/// A pending `after_func` keeps `ctx` alive until it is done or the function
/// is stopped.
pub fn after_func<F: FnOnce() + Send + 'static>(ctx: &Context, f: F) -> AfterFunc {
    let pending = Pending::new();
    let f = move || {
        drop(pending); // started: no longer pending
        f();
    };
    AfterFunc(register(ctx.node.signal_ref(), Action::Spawn(Box::new(f))))
}

/// After-funcs registered and not yet started, stopped or dropped, process-wide.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// One pending after-func, counted from [`after_func`] until its function
/// starts or is dropped unrun (stopped, or its context can never be done and
/// its handle is gone).
struct Pending;

impl Pending {
    fn new() -> Pending {
        PENDING.fetch_add(1, Ordering::Relaxed);
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// See [`crate::stats::pending_after_funcs`].
pub(crate) fn pending_after_funcs() -> usize {
    PENDING.load(Ordering::Relaxed)
}
