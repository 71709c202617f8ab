//! Cancellation: hooking cancelable nodes into the tree, and the walk that
//! cancels a node and all its descendants.
//!
//! The walk is iterative (a work list, not recursion) and holds one node lock
//! at a time: it marks a node done, moves its children to the work list, and
//! unlocks before touching them (see the invariants in `node`).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crate::callback::Slot;
use crate::error::{Cause, Error};
use crate::node::{state_of, CancelNode, Kind, Locked, Node, NodeRef, LIVE, NOT_QUEUED};
use crate::timer;

/// Why a node is being canceled.
pub(crate) enum Reason {
    /// Its cancel function was called, with an optional cause.
    Cancel(Option<Cause>),
    /// Its own deadline passed; the cause is the one given at creation.
    Deadline,
}

/// A new cancelable node under `parent`, already done if the parent is.
pub(crate) fn new_node(parent: &NodeRef, deadline: u64, own_deadline: bool, deadline_cause: Option<Cause>) -> NodeRef {
    let node = NodeRef::new(
        Some(parent.clone()),
        Kind::Cancel(CancelNode::new(deadline, own_deadline, deadline_cause)),
    );
    if let Some(signal) = parent.signal() {
        attach(signal, &node);
    }
    node
}

/// Links `child` (not yet shared) under `parent`, or makes it done at once
/// with the parent's error and cause if the parent is done (Go's
/// `propagateCancel`).
fn attach(parent: &Node, child: &Node) {
    let p = parent.cancel_part();
    let (state, inherited) = {
        let mut g = p.lock();
        let state = p.state.load(Ordering::Relaxed);
        if state == LIVE {
            // SAFETY: the parent's lock is held and `child` is not in any list.
            unsafe { push_child(&mut g, child) };
            return;
        }
        (state, g.cause())
    };
    // `child` is not shared yet, so publishing it as done needs only its own lock.
    let c = child.cancel_part();
    let mut g = c.lock();
    let stale = g.set_cause(inherited);
    c.state.store(state, Ordering::Release);
    drop(g);
    drop(stale);
}

/// # Safety
/// `g` must be the lock of `child`'s parent signal, and `child` unlinked.
unsafe fn push_child(g: &mut Locked<'_>, child: &Node) {
    let head = g.guarded().children;
    let links = g.links_of(child);
    links.prev = None;
    links.next = head;
    if let Some(h) = head {
        g.links_of(h.as_ref()).prev = Some(NonNull::from(child));
    }
    g.guarded().children = Some(NonNull::from(child));
}

/// Removes `child` from its parent's list if it is still there.
///
/// # Safety
/// `g` must be the lock of `child`'s parent signal.
unsafe fn unlink(g: &mut Locked<'_>, child: &Node) {
    let me = NonNull::from(child);
    let links = g.links_of(child);
    let (prev, next) = (links.prev.take(), links.next.take());
    match prev {
        Some(p) => g.links_of(p.as_ref()).next = next,
        // Without a predecessor, a linked child is the head; an unlinked one
        // (taken by a cancel walk) is not, and there is nothing to do.
        None if g.guarded().children == Some(me) => g.guarded().children = next,
        None => return,
    }
    if let Some(n) = next {
        g.links_of(n.as_ref()).prev = prev;
    }
}

/// Detaches a cancelable node whose count reached zero from the structures
/// that point at it, so that it can be freed (node invariant 1).
pub(crate) fn unhook(node: &Node) {
    let c = node.cancel_part();
    // A done node is already unhooked (node invariant 7): the most common
    // drop, after `cancel`, takes no lock at all.
    if c.state.load(Ordering::Acquire) != LIVE {
        return;
    }
    if c.own_deadline && c.timer_slot.load(Ordering::Relaxed) != NOT_QUEUED {
        timer::remove(node);
    }
    detach_from_parent(node);
}

fn detach_from_parent(node: &Node) {
    let parent = node.parent().and_then(|p| p.signal());
    if let Some(parent) = parent {
        let mut g = parent.cancel_part().lock();
        // SAFETY: `parent` is `node`'s parent signal and its lock is held.
        unsafe { unlink(&mut g, node) };
    }
}

/// What one cancel walk collected to do after its locks are released.
#[derive(Default)]
struct Walk {
    pending: Vec<NodeRef>,
    callbacks: Vec<Arc<Slot>>,
    stale_causes: Vec<Cause>,
}

/// Cancels `root` and every descendant. Returns false if `root` was already
/// done (cancel is idempotent; the first cause wins).
pub(crate) fn cancel(root: &Node, reason: Reason, remove_from_parent: bool) -> bool {
    let c = root.cancel_part();
    let mut g = c.lock();
    if c.state.load(Ordering::Relaxed) != LIVE {
        return false;
    }
    let mut walk = Walk::default();
    let error = match reason {
        Reason::Cancel(cause) => {
            walk.stale_causes.extend(g.set_cause(cause));
            Error::Canceled
        }
        // The deadline's cause is already in place.
        Reason::Deadline => Error::DeadlineExceeded,
    };
    let cause = g.cause();
    mark_done(root, g, error, &mut walk);

    while let Some(node) = walk.pending.pop() {
        let c = node.cancel_part();
        let mut g = c.lock();
        if c.state.load(Ordering::Relaxed) != LIVE {
            continue; // canceled concurrently; that canceller owns its subtree
        }
        walk.stale_causes.extend(g.set_cause(cause.clone()));
        mark_done(&node, g, error, &mut walk);
    }

    if remove_from_parent {
        detach_from_parent(root);
    }
    if !walk.callbacks.is_empty() {
        run_callbacks(walk.callbacks);
    }
    true
}

/// Publishes `node` as done, takes its children and callbacks into `walk`,
/// unlocks, then wakes its waiters and disarms its timer.
fn mark_done(node: &Node, mut g: Locked<'_>, error: Error, walk: &mut Walk) {
    let c = node.cancel_part();
    c.state.store(state_of(error), Ordering::Release);
    let mut next = g.guarded().children.take();
    while let Some(child) = next {
        // SAFETY: `child` was in this node's list, so it is a cancelable
        // child whose parent signal is this node, and the lock is held.
        let links = unsafe { g.links_of(child.as_ref()) };
        next = links.next.take();
        links.prev = None;
        // SAFETY: the child was in the list guarded by the held lock.
        if let Some(child) = unsafe { NodeRef::try_retain(child) } {
            walk.pending.push(child);
        }
    }
    if let Some(callbacks) = g.guarded().callbacks.take() {
        walk.callbacks.extend(*callbacks);
    }
    let wake = g.has_listeners();
    drop(g);
    if wake {
        c.wake_waiters();
    }
    if c.own_deadline {
        // Pairs with the fence in `timer::insert` (see there).
        fence(Ordering::SeqCst);
        if c.timer_slot.load(Ordering::Relaxed) != NOT_QUEUED {
            timer::remove(node);
        }
    }
}

/// Runs on-done callbacks with no lock held. A panicking callback does not
/// stop the others; the first panic is resumed once all have run.
fn run_callbacks(callbacks: Vec<Arc<Slot>>) {
    let mut panic = None;
    for slot in callbacks {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| slot.run())) {
            panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

/// The handle that cancels a context made by [`with_cancel`](crate::with_cancel),
/// [`with_deadline`](crate::with_deadline) or [`with_timeout`](crate::with_timeout).
///
/// Only its holder can cancel the context; code that receives the context
/// cannot. Calling [`cancel`](CancelFunc::cancel) more than once does nothing
/// more. Clones cancel the same context.
///
/// **Dropping a `CancelFunc` without calling it does not cancel the context**,
/// as in Go: the context stays live until an ancestor is canceled or its
/// deadline passes. Its resources are still freed once every handle to it is
/// gone, because a parent never keeps a child alive. To cancel when a scope
/// ends (Go's `defer cancel()`), use [`CancelFunc::guard`].
#[derive(Clone)]
#[must_use = "a context whose cancel func is dropped stays live until its parent is done or its deadline passes"]
pub struct CancelFunc {
    pub(crate) node: NodeRef,
}

impl CancelFunc {
    /// Cancels the context and its descendants with [`Error::Canceled`], waking
    /// every waiter and running on-done callbacks on this thread before it
    /// returns. Does nothing if the context is already done.
    pub fn cancel(&self) {
        cancel(&self.node, Reason::Cancel(None), true);
    }

    /// A guard that cancels the context when dropped: `let _cancel = cancel.guard();`
    pub fn guard(self) -> CancelGuard {
        CancelGuard(self)
    }
}

impl std::fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelFunc")
            .field(&crate::Context {
                node: self.node.clone(),
            })
            .finish()
    }
}

/// Cancels its context when dropped (Go's `defer cancel()`).
#[derive(Debug)]
#[must_use = "dropping the guard at once cancels the context at once"]
pub struct CancelGuard(CancelFunc);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The handle that cancels a context made by
/// [`with_cancel_cause`](crate::with_cancel_cause), recording why.
///
/// Dropping it without calling it does not cancel the context (see [`CancelFunc`]).
#[derive(Clone)]
#[must_use = "a context whose cancel func is dropped stays live until its parent is done or its deadline passes"]
pub struct CancelCauseFunc {
    pub(crate) node: NodeRef,
}

impl CancelCauseFunc {
    /// Cancels the context with [`Error::Canceled`] and `cause` (Go's
    /// `cancel(cause)`; `None` is Go's `nil`, making the cause `Canceled`).
    /// Only the first cancellation of a context sets its cause.
    pub fn cancel(&self, cause: Option<Cause>) {
        cancel(&self.node, Reason::Cancel(cause), true);
    }

    /// A guard that cancels the context, without a cause, when dropped.
    pub fn guard(self) -> CancelGuard {
        CancelGuard(CancelFunc { node: self.node })
    }
}

impl std::fmt::Debug for CancelCauseFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelCauseFunc")
            .field(&crate::Context {
                node: self.node.clone(),
            })
            .finish()
    }
}

/// Either kind of cancel function, for bindings that keep one per context
/// whatever made it: their own handle tables and the C ABI's `ctx_cancel_t`.
#[derive(Clone, Debug)]
pub enum AnyCancelFunc {
    /// From `with_cancel`, `with_deadline` or `with_timeout`: takes no cause.
    Plain(CancelFunc),
    /// From `with_cancel_cause`: may record a cause.
    Cause(CancelCauseFunc),
}

impl AnyCancelFunc {
    /// Cancels without a cause.
    pub fn cancel(&self) {
        match self {
            AnyCancelFunc::Plain(f) => f.cancel(),
            AnyCancelFunc::Cause(f) => f.cancel(None),
        }
    }

    /// Cancels with `cause` if this kind records causes; a plain cancel
    /// function refuses (and does not cancel), as Go's types would.
    pub fn cancel_with_cause(&self, cause: Option<Cause>) -> Result<(), CauseNotAccepted> {
        match self {
            AnyCancelFunc::Plain(_) => Err(CauseNotAccepted),
            AnyCancelFunc::Cause(f) => {
                f.cancel(cause);
                Ok(())
            }
        }
    }

    /// True for the kind that records causes.
    pub fn takes_cause(&self) -> bool {
        matches!(self, AnyCancelFunc::Cause(_))
    }

    fn node(&self) -> &NodeRef {
        match self {
            AnyCancelFunc::Plain(f) => &f.node,
            AnyCancelFunc::Cause(f) => &f.node,
        }
    }

    /// The context this function cancels.
    pub fn context(&self) -> crate::Context {
        crate::Context {
            node: self.node().clone(),
        }
    }
}

impl From<CancelFunc> for AnyCancelFunc {
    fn from(f: CancelFunc) -> Self {
        AnyCancelFunc::Plain(f)
    }
}

impl From<CancelCauseFunc> for AnyCancelFunc {
    fn from(f: CancelCauseFunc) -> Self {
        AnyCancelFunc::Cause(f)
    }
}

/// A cause given to a cancel function that does not record causes (one
/// from `with_cancel`, `with_deadline` or `with_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CauseNotAccepted;

impl std::fmt::Display for CauseNotAccepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("this cancel function takes no cause; derive with with_cancel_cause to record one")
    }
}

impl std::error::Error for CauseNotAccepted {}
