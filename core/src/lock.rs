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

use crate::node::{Node, Shard};
use crate::sync::atomic::{AtomicU32, Ordering};

/// A power of two. With 256 stripes two unrelated nodes share a lock with
/// probability 1/256; the table is 32 KiB.
const STRIPES: usize = 256;

/// A lock on its own pair of cache lines, so that neighbours in the table
/// never contend through false sharing (adjacent-line prefetch included).
#[repr(align(128))]
struct Stripe(RawLock);

static TABLE: [Stripe; STRIPES] = [const { Stripe(RawLock::new()) }; STRIPES];

/// Proof that a stripe is held; unlocks on drop.
pub(crate) struct StripeGuard {
    lock: &'static RawLock,
    contended: bool,
}

/// Locks the stripe of the node at `node`.
pub(crate) fn lock(node: &Node) -> StripeGuard {
    lock_stripe(stripe(std::ptr::from_ref(node).addr()))
}

/// Locks the stripe of `shard`, one of a contended node's extra child
/// lists: a lock of its own, so that threads on different shards of one
/// parent do not meet on one lock word. Still a node lock as far as the
/// lock order goes (one at a time).
pub(crate) fn lock_shard(shard: &Shard) -> StripeGuard {
    lock_stripe(stripe(std::ptr::from_ref(shard).addr()))
}

fn lock_stripe(lock: &'static RawLock) -> StripeGuard {
    held::enter();
    let contended = lock.lock();
    StripeGuard { lock, contended }
}

impl StripeGuard {
    /// Whether another thread held the lock when this one asked for it.
    pub(crate) fn was_contended(&self) -> bool {
        self.contended
    }
}

impl Drop for StripeGuard {
    fn drop(&mut self) {
        self.lock.unlock();
        held::leave();
    }
}

fn stripe(addr: usize) -> &'static RawLock {
    // Fibonacci hashing of the address: nodes are at least 8-aligned and
    // allocated close together, so the low bits alone would cluster.
    let addr = addr >> 3;
    let index = addr.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> (usize::BITS - STRIPES.trailing_zeros());
    &TABLE[index].0
}

/// Locks every stripe, in table order: what the fork handlers hold across
/// `fork()`. Deadlock-free because no thread holds two node locks.
pub(crate) fn lock_all() {
    for s in &TABLE {
        s.0.lock();
    }
}

/// Unlocks every stripe, after `lock_all`, in the parent or the child.
pub(crate) fn unlock_all() {
    for s in &TABLE {
        s.0.unlock();
    }
}

/// A futex lock without std's poisoning, which these locks cannot use (no
/// user code ever runs under them) and which costs a check on every lock
/// and unlock. The word is 0 (free), 1 (held) or 2 (held, maybe waiters),
/// as in std's own futex mutex.
struct RawLock(AtomicU32);

impl RawLock {
    const fn new() -> RawLock {
        RawLock(AtomicU32::new(0))
    }

    /// Takes the lock; true if it had to wait for another thread.
    #[inline]
    fn lock(&self) -> bool {
        if self
            .0
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
            return true;
        }
        false
    }

    #[cold]
    fn lock_contended(&self) {
        // As std's futex mutex does: spin while the lock is held with no
        // sleepers (critical sections are a few dozen instructions), take it
        // if it came free, else mark it contended and sleep, then spin again.
        let mut state = self.spin();
        if state == 0 {
            match self.0.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return,
                Err(s) => state = s,
            }
        }
        loop {
            // Whoever unlocks a contended (2) word wakes a sleeper.
            if state != 2 && self.0.swap(2, Ordering::Acquire) == 0 {
                return;
            }
            futex::wait(&self.0, 2);
            state = self.spin();
        }
    }

    /// Spins while the lock is held and nobody sleeps on it; the state seen last.
    fn spin(&self) -> u32 {
        let mut spins = 100;
        loop {
            let state = self.0.load(Ordering::Relaxed);
            if state != 1 || spins == 0 {
                return state;
            }
            std::hint::spin_loop();
            spins -= 1;
        }
    }

    #[inline]
    fn unlock(&self) {
        if self.0.swap(0, Ordering::Release) == 2 {
            futex::wake_one(&self.0);
        }
    }
}

#[cfg(all(target_os = "linux", not(polyctx_shuttle)))]
mod futex {
    use std::sync::atomic::AtomicU32;

    /// Sleeps while `*word == expected` (returns at once if it is not).
    pub(super) fn wait(word: &AtomicU32, expected: u32) {
        // SAFETY: FUTEX_WAIT on a live, aligned u32 this process owns; a null
        // timeout waits until woken. Spurious returns (EINTR, EAGAIN) are
        // fine: the caller re-checks the word.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }

    pub(super) fn wake_one(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE on a live, aligned u32 this process owns.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            );
        }
    }
}

/// Elsewhere, and under Shuttle (whose threads must not block in the
/// kernel): yield instead of sleeping on the word.
#[cfg(any(not(target_os = "linux"), polyctx_shuttle))]
mod futex {
    use crate::sync::atomic::{AtomicU32, Ordering};

    pub(super) fn wait(word: &AtomicU32, expected: u32) {
        if word.load(Ordering::Relaxed) == expected {
            crate::sync::thread::yield_now();
        }
    }

    pub(super) fn wake_one(_: &AtomicU32) {}
}

/// Debug builds check the lock order: at most one node lock per thread.
/// (Not under Shuttle, whose threads share one OS thread's locals.)
#[cfg(all(debug_assertions, not(polyctx_shuttle)))]
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

#[cfg(any(not(debug_assertions), polyctx_shuttle))]
mod held {
    #[inline(always)]
    pub(super) fn enter() {}
    #[inline(always)]
    pub(super) fn leave() {}
}
