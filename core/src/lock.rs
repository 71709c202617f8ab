//! The node locks: a fixed table of striped mutexes, one chosen by a node's
//! address, instead of a mutex inside every node.
//!
//! Why a table: `fork()` copies a process with only the forking thread, so a
//! lock that another thread held at that instant stays held for ever in the
//! child. A fixed table can be held whole across `fork()` by the `fork`
//! module's handlers, so no node lock is ever held in a child; a lock per
//! node could not be. It also makes nodes 8 bytes smaller.
//!
//! Sharing a stripe between nodes is safe because no code ever holds two
//! node locks at once (the tree's lock order, see `tree`); debug builds
//! check that on every acquisition.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::node::Node;

/// A power of two. With 256 stripes two unrelated nodes share a lock with
/// probability 1/256; the table is 32 KiB.
const STRIPES: usize = 256;

/// A lock on its own pair of cache lines, so that neighbours in the table
/// never contend through false sharing (adjacent-line prefetch included).
#[repr(align(128))]
struct Stripe(Mutex<()>);

static TABLE: [Stripe; STRIPES] = [const { Stripe(Mutex::new(())) }; STRIPES];

/// Proof that a node's stripe is held; unlocks on drop.
pub(crate) struct StripeGuard {
    _guard: MutexGuard<'static, ()>,
}

/// Locks the stripe of the node at `node`.
pub(crate) fn lock(node: &Node) -> StripeGuard {
    held::enter();
    // No user code runs under a node lock, so a poisoned lock can only follow
    // a polyctx bug that already panicked; carry on.
    let guard = stripe(node).lock().unwrap_or_else(PoisonError::into_inner);
    StripeGuard { _guard: guard }
}

impl Drop for StripeGuard {
    fn drop(&mut self) {
        held::leave();
    }
}

fn stripe(node: &Node) -> &'static Mutex<()> {
    // Fibonacci hashing of the address: nodes are at least 8-aligned and
    // allocated close together, so the low bits alone would cluster.
    let addr = std::ptr::from_ref(node).addr() >> 3;
    let index = addr.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> (usize::BITS - STRIPES.trailing_zeros());
    &TABLE[index].0
}

/// Every stripe, locked in table order: what the fork handlers hold across
/// `fork()`. Deadlock-free because no thread holds two node locks.
pub(crate) fn lock_all() -> Vec<MutexGuard<'static, ()>> {
    TABLE
        .iter()
        .map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

/// Debug builds check the lock order: at most one node lock per thread.
#[cfg(debug_assertions)]
mod held {
    use std::cell::Cell;

    thread_local! {
        static HOLDING: Cell<bool> = const { Cell::new(false) };
    }

    // `try_with`: contexts may be dropped while a thread's locals are
    // being destroyed, where the check is skipped rather than panic.
    pub(super) fn enter() {
        let twice = HOLDING.try_with(|h| h.replace(true)).unwrap_or(false);
        assert!(!twice, "polyctx: two node locks held at once");
    }

    pub(super) fn leave() {
        let _ = HOLDING.try_with(|h| h.set(false));
    }
}

#[cfg(not(debug_assertions))]
mod held {
    #[inline(always)]
    pub(super) fn enter() {}
    #[inline(always)]
    pub(super) fn leave() {}
}
