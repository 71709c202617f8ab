//! The context tree's nodes, their reference counts and their locks.
//!
//! Every context is a [`Node`] reached through a counted pointer, [`NodeRef`].
//! A child holds a counted reference to its parent; a cancelable parent holds
//! only raw pointers to its cancelable children, in an intrusive list, so a
//! forgotten child never stays alive because of its parent.
//!
//! # Invariants
//! 1. A node is freed only after its count reaches zero *and* its last owner
//!    has removed every raw pointer another structure holds to it (its parent's
//!    child list, the timer heap), each under that structure's lock.
//! 2. So a raw pointer found under one of those locks is valid, and may be
//!    upgraded with [`NodeRef::try_retain`], which refuses a count of zero: a
//!    node whose count reached zero is never resurrected.
//! 3. A cancelable node's `state` leaves `LIVE` exactly once, under its lock,
//!    after `cause` is written. `state` is the only thing a reader loads to see
//!    that it is done, and the error is derived from it, so done and err never
//!    disagree.
//! 4. A cancelable node's child list and callbacks are guarded by its lock; a
//!    child's links within that list are guarded by its *parent's* lock.
//! 5. Lock order: no code holds two node locks at once, nor a node lock and
//!    the timer lock; user code (callbacks, wakers, value and cause
//!    destructors) runs with no lock held.
//! 6. Background and TODO are immortal statics: their count is never touched.
//! 7. A done node is in no list and no timer entry: whoever makes it done
//!    (its own cancel, which also detaches it, or its parent's walk, which
//!    takes the whole list) holds a count until it has unhooked it, and a
//!    child of a done parent is never linked.

use std::cell::UnsafeCell;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use event_listener::{Event, EventListener};

use crate::callback::Slot;
use crate::error::{Cause, Error};
use crate::value::{KeyId, Stored};

pub(crate) const LIVE: u8 = 0;
const CANCELED: u8 = 1;
const DEADLINE_EXCEEDED: u8 = 2;

/// `timer_slot` of a node that is not in the timer heap.
pub(crate) const NOT_QUEUED: u32 = u32::MAX;

pub(crate) fn state_of(error: Error) -> u8 {
    match error {
        Error::Canceled => CANCELED,
        Error::DeadlineExceeded => DEADLINE_EXCEEDED,
    }
}

pub(crate) fn error_of(state: u8) -> Option<Error> {
    match state {
        LIVE => None,
        CANCELED => Some(Error::Canceled),
        _ => Some(Error::DeadlineExceeded),
    }
}

pub(crate) struct Node {
    refs: AtomicUsize,
    parent: Option<NodeRef>,
    pub(crate) kind: Kind,
}

pub(crate) enum Kind {
    Background,
    Todo,
    WithoutCancel,
    Value(ValueNode),
    Cancel(CancelNode),
}

pub(crate) struct ValueNode {
    /// The nearest cancelable ancestor, whose state this node reports. Valid
    /// as long as this node: `parent` holds the chain up to it.
    pub(crate) signal: Option<NonNull<Node>>,
    pub(crate) key: Arc<KeyId>,
    pub(crate) value: Box<dyn Stored>,
}

pub(crate) struct CancelNode {
    pub(crate) state: AtomicU8,
    /// True for a context that arms its own timer (Go's `timerCtx`); false
    /// for one whose deadline, if any, is inherited.
    pub(crate) own_deadline: bool,
    /// A futex-based std mutex: no global state, so it stays usable in a
    /// forked child (parking_lot's parking table does not).
    lock: Mutex<()>,
    /// Position in the timer heap, or `NOT_QUEUED`; written under the timer lock.
    pub(crate) timer_slot: AtomicU32,
    /// The effective deadline in `clock` nanoseconds (`clock::NEVER` if none).
    pub(crate) deadline: u64,
    /// Guarded by `lock`.
    guarded: UnsafeCell<Guarded>,
    /// Guarded by the lock of the parent's signal node (invariant 4).
    links: UnsafeCell<Links>,
    /// Written under `lock` before `state` leaves `LIVE`, never after. While
    /// live, a node with its own deadline keeps the deadline's cause here.
    cause: UnsafeCell<Option<Cause>>,
    /// Wakes blocked and async waiters. Private: `event_listener` allocates
    /// on first use, notify included, so only `listen` and `wake_waiters`
    /// touch it.
    event: Event,
    /// Whether anyone ever listened; read and written under `lock`.
    listened: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Guarded {
    /// Head of the intrusive list of live cancelable children.
    pub(crate) children: Option<NonNull<Node>>,
    /// Pending on-done callbacks; boxed because most contexts never have
    /// one, and a box is one word where a `Vec` is three.
    #[allow(clippy::box_collection)]
    pub(crate) callbacks: Option<Box<Vec<Arc<Slot>>>>,
}

#[derive(Default)]
pub(crate) struct Links {
    pub(crate) prev: Option<NonNull<Node>>,
    pub(crate) next: Option<NonNull<Node>>,
}

// SAFETY: every field of `Node` shared between threads is either immutable
// after construction, atomic, or an `UnsafeCell` accessed only under the lock
// that invariant 4 names (or, for `cause`, written once before a Release store
// of `state` and read only after an Acquire load shows it). Values and causes
// are `Send + Sync`; raw pointers follow invariants 1 and 2.
unsafe impl Send for Node {}
// SAFETY: as for `Send`.
unsafe impl Sync for Node {}

// No lock is ever held across user code (invariant 5), so a panic cannot
// leave a node half-updated: contexts stay usable after one.
impl std::panic::RefUnwindSafe for Node {}
impl std::panic::UnwindSafe for Node {}

impl Node {
    pub(crate) const fn root(kind: Kind) -> Node {
        Node {
            refs: AtomicUsize::new(0),
            parent: None,
            kind,
        }
    }

    fn is_static(&self) -> bool {
        matches!(self.kind, Kind::Background | Kind::Todo)
    }

    pub(crate) fn parent(&self) -> Option<&NodeRef> {
        self.parent.as_ref()
    }

    /// The nearest cancelable node at or above this one, which decides when
    /// this context is done; `None` for a context that is never done.
    #[inline]
    pub(crate) fn signal(&self) -> Option<&Node> {
        match &self.kind {
            Kind::Cancel(_) => Some(self),
            // SAFETY: `signal` is an ancestor kept alive by `self.parent`.
            Kind::Value(v) => v.signal.map(|p| unsafe { p.as_ref() }),
            _ => None,
        }
    }

    /// This node's cancel state; only called on nodes known to be cancelable.
    #[inline]
    pub(crate) fn cancel_part(&self) -> &CancelNode {
        match &self.kind {
            Kind::Cancel(c) => c,
            _ => unreachable!("polyctx: not a cancelable node"),
        }
    }

    /// The state of the node that decides when this context is done.
    #[inline]
    pub(crate) fn state(&self) -> u8 {
        match self.signal() {
            Some(s) => s.cancel_part().state.load(Ordering::Acquire),
            None => LIVE,
        }
    }
}

impl CancelNode {
    pub(crate) fn new(deadline: u64, own_deadline: bool, deadline_cause: Option<Cause>) -> Self {
        CancelNode {
            state: AtomicU8::new(LIVE),
            own_deadline,
            lock: Mutex::new(()),
            timer_slot: AtomicU32::new(NOT_QUEUED),
            deadline,
            guarded: UnsafeCell::new(Guarded::default()),
            links: UnsafeCell::new(Links::default()),
            cause: UnsafeCell::new(deadline_cause),
            event: Event::new(),
            listened: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> Locked<'_> {
        // No user code runs under this lock (invariant 5), so a poisoned lock
        // can only follow a polyctx bug that already panicked; carry on.
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        Locked {
            node: self,
            _guard: guard,
        }
    }

    /// A listener that `wake_waiters` will notify, or `None` if the node is
    /// already done. Registered under the lock, so it cannot miss the
    /// cancellation that `wake_waiters` follows.
    pub(crate) fn listen(&self) -> Option<EventListener> {
        let _g = self.lock();
        if self.state.load(Ordering::Relaxed) != LIVE {
            return None;
        }
        self.listened.store(true, Ordering::Relaxed);
        Some(self.event.listen())
    }

    pub(crate) fn wake_waiters(&self) {
        self.event.notify(usize::MAX);
    }

    /// The cause recorded when this node became done; `None` while live or
    /// when it was canceled without one.
    pub(crate) fn cause(&self) -> Option<Cause> {
        if self.state.load(Ordering::Acquire) == LIVE {
            return None;
        }
        // SAFETY: `cause` is never written after `state` left LIVE, and the
        // Acquire load above orders this read after that write (invariant 3).
        unsafe { (*self.cause.get()).clone() }
    }
}

/// Proof that a cancelable node's lock is held; unlocks on drop.
pub(crate) struct Locked<'a> {
    node: &'a CancelNode,
    _guard: MutexGuard<'a, ()>,
}

impl Locked<'_> {
    pub(crate) fn guarded(&mut self) -> &mut Guarded {
        // SAFETY: the lock is held for as long as `self` lives (invariant 4),
        // and `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.node.guarded.get() }
    }

    /// The list links of `child`, a cancelable child of the locked node.
    ///
    /// # Safety
    /// `child` must be a cancelable node whose parent's signal is the locked
    /// node, and no other reference to its links may be live.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn links_of<'n>(&self, child: &'n Node) -> &'n mut Links {
        &mut *child.cancel_part().links.get()
    }

    /// Replaces the cause, returning the old one so that it is dropped after
    /// the lock is released.
    pub(crate) fn set_cause(&mut self, cause: Option<Cause>) -> Option<Cause> {
        debug_assert_eq!(self.node.state.load(Ordering::Relaxed), LIVE);
        // SAFETY: the lock is held and the node is live, so no reader looks
        // at `cause` yet (invariant 3) and no other writer exists.
        unsafe { std::mem::replace(&mut *self.node.cause.get(), cause) }
    }

    /// Whether `wake_waiters` has anything to wake once the lock is released.
    pub(crate) fn has_listeners(&self) -> bool {
        self.node.listened.load(Ordering::Relaxed)
    }

    /// The cause as it stands: the final cause once done, the deadline's
    /// cause (or none) while live.
    pub(crate) fn cause(&self) -> Option<Cause> {
        // SAFETY: the lock is held, and `cause` is only written under it.
        unsafe { (*self.node.cause.get()).clone() }
    }
}

/// A counted reference to a node.
pub(crate) struct NodeRef(NonNull<Node>);

// SAFETY: `Node` is `Send + Sync`, and the count is atomic.
unsafe impl Send for NodeRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for NodeRef {}

impl NodeRef {
    pub(crate) fn new(parent: Option<NodeRef>, kind: Kind) -> NodeRef {
        let node = Box::new(Node {
            refs: AtomicUsize::new(1),
            parent,
            kind,
        });
        NodeRef(NonNull::from(Box::leak(node)))
    }

    pub(crate) fn from_static(node: &'static Node) -> NodeRef {
        debug_assert!(node.is_static());
        NodeRef(NonNull::from(node))
    }

    /// A new reference to a node found through a raw pointer, unless its count
    /// already reached zero (it is being freed).
    ///
    /// # Safety
    /// The caller must hold the lock of the structure that holds `ptr`, so
    /// that the node is not freed during the call (invariant 2).
    pub(crate) unsafe fn try_retain(ptr: NonNull<Node>) -> Option<NodeRef> {
        let refs = &ptr.as_ref().refs;
        let mut n = refs.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return None;
            }
            match refs.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(NodeRef(ptr)),
                Err(actual) => n = actual,
            }
        }
    }

    pub(crate) fn as_ptr(&self) -> NonNull<Node> {
        self.0
    }

    /// Takes over the count owned by a pointer from `as_ptr` on a forgotten `NodeRef`.
    ///
    /// # Safety
    /// `ptr` must come from a `NodeRef` that was forgotten, not yet taken back.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Node>) -> NodeRef {
        NodeRef(ptr)
    }

    /// A counted reference to this node's signal (see [`Node::signal`]).
    pub(crate) fn signal_ref(&self) -> Option<NodeRef> {
        let signal = self.signal()?;
        if !signal.is_static() {
            // `signal` is this node or an ancestor of it, and every node holds
            // a count on its parent, so its count is at least one already.
            signal.refs.fetch_add(1, Ordering::Relaxed);
        }
        Some(NodeRef(NonNull::from(signal)))
    }

    pub(crate) fn ptr_eq(&self, other: &NodeRef) -> bool {
        self.0 == other.0
    }
}

impl Deref for NodeRef {
    type Target = Node;

    #[inline]
    fn deref(&self) -> &Node {
        // SAFETY: a `NodeRef` owns one count (or points to a static), so the
        // node is alive.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for NodeRef {
    #[inline]
    fn clone(&self) -> Self {
        if !self.is_static() {
            let old = self.refs.fetch_add(1, Ordering::Relaxed);
            // As `Arc` does: a count this large means leaked references; stop
            // before it can wrap.
            if old > isize::MAX as usize {
                std::process::abort();
            }
        }
        NodeRef(self.0)
    }
}

impl Drop for NodeRef {
    #[inline]
    fn drop(&mut self) {
        release(self.0);
    }
}

/// Drops one count on `ptr`, freeing the node and then, iteratively, any
/// ancestors it held the last count on: dropping a million-deep chain must
/// not recurse.
fn release(mut ptr: NonNull<Node>) {
    loop {
        // SAFETY: the caller owned one count on `ptr`, so it is alive.
        let node = unsafe { ptr.as_ref() };
        if node.is_static() || node.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Pairs with the Release decrements of other owners, so their last
        // uses happen before the free.
        fence(Ordering::Acquire);
        if let Kind::Cancel(_) = node.kind {
            crate::cancel::unhook(node);
        }
        // SAFETY: the count is zero and `unhook` removed every raw pointer to
        // the node (invariant 1), so this is the only access left; the node
        // was allocated by `Box` in `NodeRef::new`.
        let mut owned = unsafe { Box::from_raw(ptr.as_ptr()) };
        if let Kind::Cancel(c) = &mut owned.kind {
            let g = c.guarded.get_mut();
            debug_assert!(g.children.is_none(), "children hold their parent alive");
            debug_assert!(g.callbacks.as_ref().is_none_or(|cb| cb.is_empty()));
        }
        let parent = owned.parent.take();
        drop(owned);
        match parent {
            Some(p) => {
                ptr = p.0;
                std::mem::forget(p);
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_stays_small() {
        // A cancelable context is one allocation of this size; see the
        // memory figures in the README before growing it.
        eprintln!(
            "Node {} CancelNode {} ValueNode {}",
            std::mem::size_of::<Node>(),
            std::mem::size_of::<CancelNode>(),
            std::mem::size_of::<ValueNode>()
        );
        assert!(std::mem::size_of::<Node>() <= 96);
    }
}
