//! Everything done under a node lock: linking children, the cancel walk,
//! listing callbacks and waiters, and unhooking a node so it can be freed.
//! No other module changes what a node lock guards.
//!
//! # Invariants
//! 1. A cancelable node's `state` leaves `LIVE` exactly once, under its
//!    lock, after `cause` is written. `state` is the only thing a reader
//!    loads to see that it is done, and the error is derived from it, so
//!    done and err never disagree.
//! 2. A cancelable node's `guarded` (child list, callbacks) is guarded by
//!    its lock; each of its shards' lists (a contended parent's extra child
//!    lists, `node::Shards`) by that shard's lock; a child's `links` by the
//!    lock of the list it is in (its `list`, fixed when it is linked). While
//!    live, `cause` is written only under the node's lock; never once done.
//! 3. Lock order: no code holds two node locks at once, nor a node lock and
//!    the timer or pool lock. Node locks are striped (`lock`), so this is
//!    also what makes two nodes sharing a stripe safe. User code (callbacks,
//!    wakers, value and cause destructors) runs with no lock held, and may
//!    re-enter polyctx.
//! 4. A done node is in no child list: whoever makes it done (its own
//!    cancel, which also detaches it, or its parent's walk, which takes the
//!    whole list and then each shard's) holds a count until it has unhooked
//!    it, and a child of a done parent is never linked. A parent's shards
//!    are published under its lock while it is live, so a walk (which
//!    starts under that lock) sees every shard a child can be in; a child
//!    linking into a shard checks the parent's state under the shard's
//!    lock, which the walk takes after publishing the state.
//! 5. A done node is in no timer entry: the walk (`mark_done`) and
//!    `timer::insert` each store, fence (SeqCst), then load what the other
//!    stored, so at least one of them sees the other and removes the entry.
//! 6. A done node's callback list is empty: the walk takes it in the same
//!    critical section that publishes the state. Each slot's action is then
//!    taken by exactly one of the walk and `Registration::stop` (`callback`).

use crate::sync::atomic::{fence, Ordering};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::callback::{self, Slot};
use crate::error::{Cause, Error};
use crate::lock::{self, StripeGuard};
use crate::node::{
    state_of, CancelNode, Guarded, Kind, Links, Node, NodeRef, Shard, Shards, LIVE, MAIN_LIST, NOT_QUEUED, SHARDED,
};
use crate::{fork, timer};

/// Proof that a cancelable node's lock is held; unlocks on drop.
struct Locked<'a> {
    node: &'a CancelNode,
    stripe: StripeGuard,
}

fn lock(node: &Node) -> Locked<'_> {
    Locked {
        node: node.cancel_part(),
        stripe: lock::lock(node),
    }
}

impl Locked<'_> {
    fn state(&self) -> u8 {
        // Relaxed: `state` is only written under this lock.
        self.node.state.load(Ordering::Relaxed)
    }

    fn guarded(&mut self) -> &mut Guarded {
        // SAFETY: the lock is held for as long as `self` lives (invariant 2),
        // and `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.node.guarded.get() }
    }

    /// Replaces the cause, returning the old one so that it is dropped after
    /// the lock is released.
    fn set_cause(&mut self, cause: Option<Cause>) -> Option<Cause> {
        debug_assert_eq!(self.state(), LIVE);
        // SAFETY: the lock is held and the node is live, so no reader looks
        // at `cause` yet (invariant 1) and no other writer exists.
        unsafe { std::mem::replace(&mut *self.node.cause.get(), cause) }
    }

    /// The cause as it stands: the final cause once done, the deadline's
    /// cause (or none) while live.
    fn cause(&self) -> Option<Cause> {
        // SAFETY: the lock is held, and `cause` is only written under it.
        unsafe { (*self.node.cause.get()).clone() }
    }
}

/// A child list whose lock is held: a node's own (`Locked`), or one of its
/// shards' (`ShardLocked`).
trait ChildList {
    fn head(&self) -> Option<NonNull<Node>>;
    fn set_head(&mut self, head: Option<NonNull<Node>>);
}

impl ChildList for Locked<'_> {
    fn head(&self) -> Option<NonNull<Node>> {
        match self.node.shards() {
            // SAFETY: `main` is guarded by this node's lock, which is held.
            Some(shards) => unsafe { *shards.main.children.get() },
            // Relaxed: only written under this lock.
            None => NonNull::new(self.node.children.load(Ordering::Relaxed).cast()),
        }
    }

    fn set_head(&mut self, head: Option<NonNull<Node>>) {
        match self.node.shards() {
            // SAFETY: as in `head`; `&mut self` makes this the only access.
            Some(shards) => unsafe { *shards.main.children.get() = head },
            None => {
                let word = head.map_or(std::ptr::null_mut(), |h| h.as_ptr().cast());
                self.node.children.store(word, Ordering::Relaxed);
            }
        }
    }
}

/// Proof that a shard's lock is held; unlocks on drop.
struct ShardLocked<'a> {
    shard: &'a Shard,
    _stripe: StripeGuard,
}

fn lock_shard(shard: &Shard) -> ShardLocked<'_> {
    ShardLocked {
        shard,
        _stripe: lock::lock_shard(shard),
    }
}

impl ChildList for ShardLocked<'_> {
    fn head(&self) -> Option<NonNull<Node>> {
        // SAFETY: the shard's lock is held for as long as `self` lives
        // (invariant 2).
        unsafe { *self.shard.children.get() }
    }

    fn set_head(&mut self, head: Option<NonNull<Node>>) {
        // SAFETY: as in `head`; `&mut self` makes this the only access.
        unsafe { *self.shard.children.get() = head }
    }
}

/// The list links of `child`.
///
/// # Safety
/// `child` must be a cancelable node in (or being linked into) a list whose
/// lock the caller holds, and no other reference to its links may be live.
#[allow(clippy::mut_from_ref)]
unsafe fn links_of(child: &Node) -> &mut Links {
    // SAFETY: invariant 2, as the caller promises.
    unsafe { &mut *child.cancel_part().links.get() }
}

/// The shard of a contended parent that this thread links its children
/// into: threads are dealt shards in turn, so a few threads deriving from
/// one parent each have a list (and a lock) of their own.
fn my_shard() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    crate::sync::thread_local! {
        static MINE: Cell<Option<u8>> = const { Cell::new(None) };
    }
    let pick = || (NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % crate::node::SHARDS) as u8;
    // `try_with`: a thread being torn down still derives (into shard 0).
    let mine = MINE.try_with(|m| *m.get().get_or_insert_with(pick)).unwrap_or(0);
    usize::from(mine)
}

/// The cause recorded when `c` became done; `None` while live or when it
/// was canceled without one.
pub(crate) fn final_cause(c: &CancelNode) -> Option<Cause> {
    if c.is_live() {
        return None;
    }
    // SAFETY: `cause` is never written after `state` left LIVE, and the
    // Acquire load above orders this read after that write (invariant 1).
    unsafe { (*c.cause.get()).clone() }
}

// Linking ------------------------------------------------------------------

/// A new cancelable node under `parent`, already done if the parent is:
/// two references to it, for a context and its cancel function.
#[track_caller]
pub(crate) fn new_node(
    parent: &NodeRef,
    deadline: u64,
    own_deadline: bool,
    deadline_cause: Option<Cause>,
) -> (NodeRef, NodeRef) {
    fork::check();
    let (node, twin) = NodeRef::new_pair(
        Some(parent.clone()),
        Kind::Cancel(CancelNode::new(deadline, own_deadline, deadline_cause)),
    );
    if let Some(signal) = parent.signal() {
        attach(signal, &node);
    }
    (node, twin)
}

/// Links `child` (not yet shared) under `parent`, or makes it done at once
/// with the parent's error and cause if the parent is done (Go's
/// `propagateCancel`).
fn attach(parent: &Node, child: &NodeRef) {
    let c = parent.cancel_part();
    let (state, inherited) = if let Some(shards) = c.shards() {
        let shard = my_shard();
        let mut g = lock_shard(&shards.lists[shard]);
        // Under the shard's lock: a walk that published the state before
        // taking this lock is seen, a later one takes this list (invariant 4).
        let state = c.state.load(Ordering::Acquire);
        if state == LIVE {
            child.cancel_part().list.store(shard as u8, Ordering::Relaxed);
            // SAFETY: the shard's lock is held, `child` is in no list, and
            // its pointer comes from its owning reference.
            unsafe { push_child(&mut g, child.as_ptr()) };
            return;
        }
        drop(g);
        (state, final_cause(c))
    } else {
        let mut g = lock(parent);
        let state = g.state();
        if state == LIVE {
            // SAFETY: the parent's lock is held, `child` is in no list, and
            // its pointer comes from its owning reference.
            unsafe { push_child(&mut g, child.as_ptr()) };
            if g.stripe.was_contended() {
                shard_out(&g);
            }
            return;
        }
        (state, g.cause())
    };
    // `child` is not shared yet, so publishing it as done needs only its own lock.
    let mut g = lock(child);
    let stale = g.set_cause(inherited);
    g.node.state.store(state, Ordering::Release);
    drop(g);
    drop(stale);
}

/// Gives the locked, live `g` its shards, once: another thread waited for
/// its lock to link a child, so threads derive from it at once.
fn shard_out(g: &Locked<'_>) {
    if g.node.shards().is_some() {
        return;
    }
    // The node's own list moves into the shards, under the same lock.
    let mut shards = Box::new(Shards::default());
    *shards.main.children.get_mut() = g.head();
    let word = Box::into_raw(shards).cast::<()>().map_addr(|a| a | SHARDED);
    // Only ever written under this lock. Release: a thread that sees the
    // tag sees initialised shards.
    g.node.children.store(word, Ordering::Release);
}

/// # Safety
/// `list`'s lock must be held, and be the lock `child`'s `list` names (or
/// will name); `child` unlinked and copied from an owning `NodeRef` (node
/// invariant 3).
unsafe fn push_child(list: &mut impl ChildList, child: NonNull<Node>) {
    let head = list.head();
    // SAFETY: as the caller promises; `child` is alive (its owner is the caller).
    let links = unsafe { links_of(child.as_ref()) };
    links.prev = None;
    links.next = head;
    if let Some(h) = head {
        // SAFETY: `h` is in the list guarded by the held lock.
        unsafe { links_of(h.as_ref()) }.prev = Some(child);
    }
    list.set_head(Some(child));
}

/// Removes `child` from `list` if it is still there.
///
/// # Safety
/// `list` must be the list `child` was linked in, with its lock held.
unsafe fn unlink(list: &mut impl ChildList, child: &Node) {
    let me = NonNull::from(child);
    // SAFETY: as the caller promises.
    let links = unsafe { links_of(child) };
    let (prev, next) = (links.prev.take(), links.next.take());
    match prev {
        // SAFETY: `p` is in the list guarded by the held lock.
        Some(p) => unsafe { links_of(p.as_ref()) }.next = next,
        // Without a predecessor, a linked child is the head; an unlinked one
        // (taken by a cancel walk) is not, and there is nothing to do.
        None if list.head() == Some(me) => list.set_head(next),
        None => return,
    }
    if let Some(n) = next {
        // SAFETY: `n` is in the list guarded by the held lock.
        unsafe { links_of(n.as_ref()) }.prev = prev;
    }
}

/// Unlinks every child of `list` into `walk` (the walk of their parent,
/// which is done).
///
/// # Safety
/// `list`'s lock must be held.
unsafe fn take_children(list: &mut impl ChildList, walk: &mut Walk) {
    let mut next = list.head();
    list.set_head(None);
    while let Some(child) = next {
        // SAFETY: `child` was in `list`, whose lock is held.
        let links = unsafe { links_of(child.as_ref()) };
        next = links.next.take();
        links.prev = None;
        // SAFETY: the child was in the list guarded by the held lock.
        if let Some(child) = unsafe { NodeRef::try_retain(child) } {
            walk.pending.push(child);
        }
    }
}

fn detach_from_parent(node: &Node) {
    let Some(parent) = node.parent().and_then(|p| p.signal()) else {
        return;
    };
    match node.cancel_part().list.load(Ordering::Relaxed) {
        MAIN_LIST => {
            let mut g = lock(parent);
            // SAFETY: `node` is in its parent signal's own list, whose lock is held.
            unsafe { unlink(&mut g, node) };
        }
        shard => {
            let shards = parent
                .cancel_part()
                .shards()
                .expect("a child in a shard has a sharded parent");
            let mut g = lock_shard(&shards.lists[usize::from(shard)]);
            // SAFETY: `node` is in this shard's list, whose lock is held.
            unsafe { unlink(&mut g, node) };
        }
    }
}

// Freeing ------------------------------------------------------------------

impl Drop for NodeRef {
    #[inline]
    fn drop(&mut self) {
        release(self.as_ptr());
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
        // Pairs with the Release decrements of other owners, so that their
        // last uses happen before the free. A load rather than a fence, as
        // std's `Arc` does under ThreadSanitizer, which cannot see fences.
        node.refs.load(Ordering::Acquire);
        if let Kind::Cancel(_) = node.kind {
            unhook(node);
        }
        crate::debug::freed(node);
        // SAFETY: the count is zero and `unhook` removed every raw pointer to
        // the node (node invariant 1), so this is the only access left; `ptr`
        // has the provenance of the `Box` made in `NodeRef::new` (node
        // invariant 3).
        let mut owned = unsafe { Box::from_raw(ptr.as_ptr()) };
        if let Kind::Cancel(c) = &mut owned.kind {
            debug_assert!(
                c.children.get_mut().is_null() || c.shards().is_some(),
                "children hold their parent alive"
            );
            let g = c.guarded.get_mut();
            debug_assert!(g.callbacks.as_ref().is_none_or(|cb| cb.is_empty()));
        }
        let parent = owned.parent.take();
        // The value, the cause and their destructors go here, with no lock held.
        drop(owned);
        match parent {
            Some(p) => ptr = p.into_ptr(),
            None => return,
        }
    }
}

/// Detaches a cancelable node whose count reached zero from the structures
/// that point at it, so that it can be freed (node invariant 1).
fn unhook(node: &Node) {
    let c = node.cancel_part();
    // A done node is already unhooked (invariants 4 and 5): the most common
    // drop, after `cancel`, takes no lock at all.
    if !c.is_live() {
        return;
    }
    // Acquire: pairs with the timer's Release store of NOT_QUEUED, its last
    // touch of this node; seen queued, the entry is removed under the timer
    // lock, which also waits out a timer pinning it (`timer::take_due`).
    if c.own_deadline && c.timer_slot.load(Ordering::Acquire) != NOT_QUEUED {
        timer::remove(node);
    }
    detach_from_parent(node);
    // Never canceled, never expired: its cancel function was dropped uncalled.
    crate::debug::lost_cancel(node);
}

// Cancelling ---------------------------------------------------------------

/// Why a node is being canceled.
pub(crate) enum Reason {
    /// Its cancel function was called, with an optional cause.
    Cancel(Option<Cause>),
    /// Its own deadline passed; the cause is the one given at creation.
    Deadline,
}

/// What one cancel walk collected to do after its locks are released.
#[derive(Default)]
struct Walk {
    pending: Vec<NodeRef>,
    callbacks: Vec<Arc<Slot>>,
    stale_causes: Vec<Cause>,
}

/// Cancels `root` and every descendant, then runs their callbacks. Returns
/// false if `root` was already done (cancel is idempotent; the first cause
/// wins). The walk is iterative and holds one node lock at a time.
pub(crate) fn cancel(root: &Node, reason: Reason, remove_from_parent: bool) -> bool {
    let mut g = lock(root);
    if g.state() != LIVE {
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
        let mut g = lock(&node);
        if g.state() != LIVE {
            continue; // canceled concurrently; that canceller owns its subtree
        }
        walk.stale_causes.extend(g.set_cause(cause.clone()));
        mark_done(&node, g, error, &mut walk);
    }

    if remove_from_parent {
        detach_from_parent(root);
    }
    callback::run_all(walk.callbacks);
    true
}

/// Fires the deadline that decides when `signal` is done, now that it has
/// passed: what the timer thread would do, done by a thread that saw the
/// deadline pass first. The deadline belongs to `signal` or to the nearest
/// ancestor that armed its own timer with the same deadline.
pub(crate) fn expire(signal: &Node) {
    let deadline = signal.cancel_part().deadline;
    let mut node = Some(signal);
    while let Some(n) = node {
        let c = n.cancel_part();
        if c.own_deadline && c.deadline == deadline {
            cancel(n, Reason::Deadline, true);
            return;
        }
        node = n.parent().and_then(|p| p.signal());
    }
}

/// Publishes `node` as done, takes its children and callbacks into `walk`,
/// unlocks, then disarms its timer.
fn mark_done(node: &Node, mut g: Locked<'_>, error: Error, walk: &mut Walk) {
    let c = g.node;
    c.state.store(state_of(error), Ordering::Release);
    // SAFETY: this node's lock is held.
    unsafe { take_children(&mut g, walk) };
    if let Some(callbacks) = g.guarded().callbacks.take() {
        walk.callbacks.extend(*callbacks);
    }
    drop(g);
    // Invariant 4: the shards, each under its lock, after the state.
    if let Some(shards) = c.shards() {
        for shard in &shards.lists {
            // SAFETY: the shard's lock is held.
            unsafe { take_children(&mut lock_shard(shard), walk) };
        }
    }
    if c.own_deadline {
        // Invariant 5: pairs with the fence in `timer::insert`.
        fence(Ordering::SeqCst);
        if c.timer_slot.load(Ordering::Relaxed) != NOT_QUEUED {
            timer::remove(node);
        }
    }
}

// Callbacks and waiters ----------------------------------------------------

/// Lists `slot` among `signal`'s callbacks. False if `signal` is already
/// done: then nothing will run the slot, and the caller must.
pub(crate) fn list(signal: &Node, slot: &Arc<Slot>) -> bool {
    let mut g = lock(signal);
    if g.state() != LIVE {
        return false;
    }
    let list = g.guarded().callbacks.get_or_insert_with(Default::default);
    slot.index.store(list.len(), Ordering::Relaxed);
    list.push(slot.clone());
    true
}

/// Removes `slot` from `signal`'s callbacks if it is still listed there.
pub(crate) fn unlist(signal: &Node, slot: &Arc<Slot>) {
    let removed = {
        let mut g = lock(signal);
        if g.state() != LIVE {
            return; // the walk took the whole list (invariant 6)
        }
        let Some(list) = g.guarded().callbacks.as_mut() else {
            return;
        };
        let i = slot.index.load(Ordering::Relaxed);
        if !list.get(i).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            return;
        }
        let removed = list.swap_remove(i);
        if let Some(moved) = list.get(i) {
            moved.index.store(i, Ordering::Relaxed);
        }
        removed
    };
    // Dropped with no lock held: it may hold the last count on a node.
    drop(removed);
}

// Introspection ------------------------------------------------------------

/// How many live cancelable children are linked under `signal`.
pub(crate) fn child_count(signal: &Node) -> usize {
    let mut count = len(&lock(signal));
    if let Some(shards) = signal.cancel_part().shards() {
        count += shards.lists.iter().map(|s| len(&lock_shard(s))).sum::<usize>();
    }
    count
}

fn len(list: &impl ChildList) -> usize {
    let mut count = 0;
    let mut next = list.head();
    while let Some(child) = next {
        count += 1;
        // SAFETY: `child` is in `list`, whose lock the caller holds.
        next = unsafe { links_of(child.as_ref()) }.next;
    }
    count
}

/// Gives `signal` its shards now, as if threads had contended for it: for
/// tests of the sharded lists.
#[cfg(test)]
pub(crate) fn shard_now(signal: &Node) {
    let g = lock(signal);
    if g.state() == LIVE {
        shard_out(&g);
    }
}

/// How many callbacks and waiters are listed on `signal`.
pub(crate) fn callback_count(signal: &Node) -> usize {
    let mut g = lock(signal);
    g.guarded().callbacks.as_ref().map_or(0, |list| list.len())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::shard_now;
    use crate::{stats, with_cancel, with_timeout, Context, Error};

    /// Children in a contended parent's shards, made and dropped on several
    /// threads, are all reached by the parent's cancel and all unlinked.
    #[test]
    fn a_sharded_parent_cancels_and_unlinks_every_child() {
        let (parent, cancel) = with_cancel(&Context::background());
        // Children linked before the parent is sharded move with its list.
        let (early, cancel_early) = with_cancel(&parent);
        let (kept_early, _cancel_kept_early) = with_cancel(&parent);
        shard_now(parent.node.signal().expect("cancelable"));
        cancel_early.cancel();
        assert_eq!(stats::children(&parent), 1);
        let kept: Vec<Vec<Context>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let mut kept = Vec::new();
                        for i in 0..20 {
                            let (c, cancel_c) = with_cancel(&parent);
                            match i % 3 {
                                0 => cancel_c.cancel(),
                                1 => drop(cancel_c),
                                _ => kept.push(c.clone()),
                            }
                            let (d, _cancel_d) = with_timeout(&c, Duration::from_secs(3600));
                            kept.push(d);
                        }
                        kept
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let live = kept.iter().flatten().filter(|c| !c.is_done()).count();
        assert!(live > 0);
        assert!(stats::children(&parent) > 0);
        cancel.cancel();
        assert!(kept.iter().flatten().all(|c| c.err() == Some(Error::Canceled)));
        assert_eq!(kept_early.err(), Some(Error::Canceled));
        assert!(early.is_done());
        assert_eq!(stats::children(&parent), 0);
    }
}
