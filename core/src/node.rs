//! The context tree's nodes: their layout, and the counted pointer that
//! owns them. What a node lock guards, and every change to it, is in `tree`.
//!
//! Every context is a [`Node`] reached through a counted pointer, [`NodeRef`].
//! A child holds a counted reference to its parent; a cancelable parent
//! holds only raw pointers to its cancelable children (an intrusive list),
//! so a forgotten child never stays alive because of its parent.
//!
//! # Invariants (counting and pointers)
//! 1. A node is freed only after its count reaches zero *and* its last owner
//!    has removed every raw pointer another structure holds to it (its
//!    parent's child list, the timer heap), each under that structure's lock
//!    (`tree::unhook`).
//! 2. So a raw pointer found under one of those locks is valid, and may be
//!    upgraded with [`NodeRef::try_retain`], which refuses a count of zero: a
//!    node whose count reached zero is never resurrected.
//! 3. Every raw pointer that may become an owner again (child lists, timer
//!    entries, a value node's signal, [`NodeRef::signal_ref`]) is copied from
//!    an owning `NodeRef`, never made from a `&Node`: freeing through a
//!    pointer derived from a shared reference is undefined behaviour under
//!    Rust's aliasing rules (Miri checks this).
//! 4. Background and TODO are immortal statics: their count is never touched.

use crate::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::cell::UnsafeCell;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

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
    pub(crate) refs: AtomicUsize,
    pub(crate) parent: Option<NodeRef>,
    pub(crate) kind: Kind,
}

#[cfg_attr(polyctx_shuttle, allow(clippy::large_enum_variant))] // Shuttle's atomics are larger
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

/// A cancelable context (Go's `cancelCtx` and `timerCtx`). The fields in
/// cells are guarded as `tree` states, and only `tree` touches them.
pub(crate) struct CancelNode {
    pub(crate) state: AtomicU8,
    /// True for a context that arms its own timer (Go's `timerCtx`); false
    /// for one whose deadline, if any, is inherited.
    pub(crate) own_deadline: bool,
    /// Position in the timer heap, or `NOT_QUEUED`; written under the timer lock.
    pub(crate) timer_slot: AtomicU32,
    /// The effective deadline in `clock` nanoseconds (`clock::NEVER` if none).
    pub(crate) deadline: u64,
    /// Which of its parent's child lists this node is linked in:
    /// `MAIN_LIST` or a shard's index. Set before the node is shared.
    pub(crate) list: AtomicU8,
    /// The head of this node's own list of live cancelable children (null
    /// when empty) or, with the `SHARDED` bit, its `Shards`, which then hold
    /// that list too. Written only under this node's lock; read without it
    /// only to learn whether the node is sharded (`shards`), which is why
    /// it is atomic. One word for both keeps contexts at their size.
    pub(crate) children: AtomicPtr<()>,
    pub(crate) guarded: UnsafeCell<Guarded>,
    pub(crate) links: UnsafeCell<Links>,
    pub(crate) cause: UnsafeCell<Option<Cause>>,
}

/// The tag of `CancelNode::children` when it points at `Shards` (aligned to
/// 128, so the bit is free).
pub(crate) const SHARDED: usize = 1;

/// `CancelNode::list` of a child linked in its parent's own list.
pub(crate) const MAIN_LIST: u8 = u8::MAX;

/// How many extra child lists a contended parent has.
pub(crate) const SHARDS: usize = 8;

/// The extra child lists of a parent that threads contend to derive from
/// (a server-lifetime context): each thread links its children into a list
/// of its own, under that list's own stripe lock, so threads deriving from
/// one parent at once stop writing each other's cache lines (the parent's
/// list head, each other's children's links, one lock word). Made on the
/// first contended attach (`tree::attach`), about 1 KiB, freed with the node.
#[derive(Default)]
pub(crate) struct Shards {
    /// The node's own list, moved here when it was sharded; guarded by the
    /// node's lock, as before.
    pub(crate) main: Shard,
    pub(crate) lists: [Shard; SHARDS],
}

/// One child list, on its own pair of cache lines.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Shard {
    /// Head of the list; guarded by this shard's stripe lock
    /// (`lock::lock_shard`), or for `Shards::main` by the node's lock.
    pub(crate) children: UnsafeCell<Option<NonNull<Node>>>,
}

/// What a cancelable node's own lock guards, besides `children`.
#[derive(Default)]
pub(crate) struct Guarded {
    /// Pending callbacks and waiters; boxed because most contexts never have
    /// one, and a box is one word where a `Vec` is three.
    #[allow(clippy::box_collection)]
    pub(crate) callbacks: Option<Box<Vec<Arc<Slot>>>>,
}

/// A cancelable node's place in its parent's child list; guarded by the
/// parent's lock.
#[derive(Default)]
pub(crate) struct Links {
    pub(crate) prev: Option<NonNull<Node>>,
    pub(crate) next: Option<NonNull<Node>>,
}

// SAFETY: every field of `Node` shared between threads is either immutable
// after construction, atomic, or an `UnsafeCell` accessed only under the lock
// that `tree` names for it (or, for `cause`, written once before a Release
// store of `state` and read only after an Acquire load shows it). Values and
// causes are `Send + Sync`; raw pointers follow invariants 1 to 3.
unsafe impl Send for Node {}
// SAFETY: as for `Send`.
unsafe impl Sync for Node {}

// No lock is ever held across user code (see `tree`), so a panic cannot
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

    pub(crate) fn is_static(&self) -> bool {
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
            timer_slot: AtomicU32::new(NOT_QUEUED),
            deadline,
            list: AtomicU8::new(MAIN_LIST),
            children: AtomicPtr::new(std::ptr::null_mut()),
            guarded: UnsafeCell::new(Guarded::default()),
            links: UnsafeCell::new(Links::default()),
            cause: UnsafeCell::new(deadline_cause),
        }
    }

    /// This node's shards, if threads have contended to derive from it.
    #[inline]
    pub(crate) fn shards(&self) -> Option<&Shards> {
        // Acquire pairs with the Release store that published the shards.
        let word = self.children.load(Ordering::Acquire);
        if word.addr() & SHARDED == 0 {
            return None;
        }
        // SAFETY: a tagged word is a pointer from `Box::into_raw`, set once
        // and never changed again, freed only when this node is (see `Drop`).
        Some(unsafe { &*word.map_addr(|a| a & !SHARDED).cast::<Shards>() })
    }

    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        self.state.load(Ordering::Acquire) == LIVE
    }
}

impl Drop for CancelNode {
    fn drop(&mut self) {
        let word = *self.children.get_mut();
        if word.addr() & SHARDED != 0 {
            // SAFETY: a tagged word came from `Box::into_raw` (see `shards`),
            // and this node, being dropped, was its only owner.
            drop(unsafe { Box::from_raw(word.map_addr(|a| a & !SHARDED).cast::<Shards>()) });
        }
    }
}

/// A counted reference to a node. Its `Drop` is in `tree`, which unhooks a
/// node whose count reaches zero before freeing it.
pub(crate) struct NodeRef(NonNull<Node>);

// SAFETY: `Node` is `Send + Sync`, and the count is atomic.
unsafe impl Send for NodeRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for NodeRef {}

impl NodeRef {
    #[track_caller]
    pub(crate) fn new(parent: Option<NodeRef>, kind: Kind) -> NodeRef {
        NodeRef(Self::alloc(parent, kind, 1))
    }

    /// Two references to a new node (a context and its cancel function),
    /// counted from the start rather than by an atomic increment.
    #[track_caller]
    pub(crate) fn new_pair(parent: Option<NodeRef>, kind: Kind) -> (NodeRef, NodeRef) {
        let ptr = Self::alloc(parent, kind, 2);
        (NodeRef(ptr), NodeRef(ptr))
    }

    /// A new node; `#[track_caller]` all the way from the public `with_*`
    /// functions, so that live-context tracking knows where it was made.
    #[track_caller]
    fn alloc(parent: Option<NodeRef>, kind: Kind, refs: usize) -> NonNull<Node> {
        let node = Box::new(Node {
            refs: AtomicUsize::new(refs),
            parent,
            kind,
        });
        let ptr = Box::into_raw(node);
        crate::debug::created(ptr, std::panic::Location::caller());
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(ptr) }
    }

    pub(crate) fn from_static(node: &'static Node) -> NodeRef {
        debug_assert!(node.is_static());
        // Never freed and never written through (its count is never
        // touched), so a pointer from a shared reference is enough.
        NodeRef(NonNull::from(node))
    }

    /// A new reference to a node found through a raw pointer, unless its count
    /// already reached zero (it is being freed).
    ///
    /// # Safety
    /// The caller must hold the lock of the structure that holds `ptr`, so
    /// that the node is not freed during the call (invariant 2), and `ptr`
    /// must have been copied from a `NodeRef` (invariant 3).
    pub(crate) unsafe fn try_retain(ptr: NonNull<Node>) -> Option<NodeRef> {
        // SAFETY: as the caller promises, the node is alive.
        let refs = unsafe { &ptr.as_ref().refs };
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

    /// The pointer this reference owns, with the provenance to free it.
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

    /// Gives up this reference without dropping its count.
    pub(crate) fn into_ptr(self) -> NonNull<Node> {
        std::mem::ManuallyDrop::new(self).0
    }

    /// The pointer to this node's signal (see [`Node::signal`]), carrying the
    /// provenance of an owning reference (invariant 3).
    pub(crate) fn signal_ptr(&self) -> Option<NonNull<Node>> {
        match &self.kind {
            Kind::Cancel(_) => Some(self.0),
            Kind::Value(v) => v.signal,
            _ => None,
        }
    }

    /// A counted reference to this node's signal (see [`Node::signal`]).
    pub(crate) fn signal_ref(&self) -> Option<NodeRef> {
        let ptr = self.signal_ptr()?;
        // SAFETY: the signal is this node or an ancestor of it, kept alive by
        // `self`; and every node holds a count on its parent, so its count is
        // at least one already and this increment cannot resurrect it.
        unsafe { ptr.as_ref() }.refs.fetch_add(1, Ordering::Relaxed);
        Some(NodeRef(ptr))
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
        // 72 bytes is an 80-byte malloc chunk (the README's figure).
        assert!(std::mem::size_of::<Node>() <= 72);
    }
}
