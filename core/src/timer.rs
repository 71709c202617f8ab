//! The one timer thread that serves every deadline in the process.
//!
//! Deadlines live in one binary min-heap under one lock. Each entry points at
//! its node, and the node records its position (`timer_slot`), so cancelling
//! or dropping a context removes its entry at once, in O(log n): there is no
//! garbage waiting for its deadline. The thread starts on the first deadline,
//! sleeps on a condition variable until the earliest one, and cancels what is
//! due with the lock released.
//!
//! Lock order: the timer lock is never held together with a node lock (see
//! `tree`); the thread pins due nodes with `try_retain` under the timer lock,
//! which node invariant 2 allows, then releases it before cancelling.
//!
//! Fork: the `fork` module holds this lock across `fork()`; a child inherits
//! the heap but not the thread, and starts a new one on its next polyctx call
//! that needs it.

use std::ptr::NonNull;
use std::sync::PoisonError;
use std::time::Duration;

use crate::clock;
use crate::node::{Node, NodeRef, LIVE, NOT_QUEUED};
use crate::sync::atomic::{fence, AtomicU32, Ordering};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::tree::{cancel, Reason};

struct Timer {
    heap: Mutex<Heap>,
    wake: Condvar,
}

pub(crate) struct Heap {
    entries: Vec<Entry>,
    thread_running: bool,
    /// When the thread will next wake by itself (`clock::NEVER` while it
    /// waits for the first entry). An insert wakes it only for an earlier
    /// deadline: request servers add later and later deadlines, and a futex
    /// wake per derive would cost more than the derive.
    sleeps_until: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    at: u64,
    /// Copied from an owning `NodeRef` (node invariant 3).
    node: NonNull<Node>,
}

// SAFETY: entries are only read under the timer lock, and the nodes they
// point to are `Sync` and outlive their entries (node invariant 1).
unsafe impl Send for Entry {}

static TIMER: Timer = Timer {
    heap: Mutex::new(Heap {
        entries: Vec::new(),
        thread_running: false,
        sleeps_until: clock::NEVER,
    }),
    wake: Condvar::new(),
};

/// Arms `node`'s own deadline at `at` (clock nanoseconds).
pub(crate) fn insert(node: &NodeRef, at: u64) {
    crate::fork::check();
    let mut heap = lock();
    assert!(
        heap.entries.len() < NOT_QUEUED as usize,
        "polyctx: too many live deadlines"
    );
    heap.entries.push(Entry {
        at,
        node: node.as_ptr(),
    });
    let last = heap.entries.len() - 1;
    heap.sift_up(last);
    // A concurrent cancel (a parent's walk) may mark the node done at any
    // moment and then look at `timer_slot` without this lock. Store
    // buffering could let each side miss the other's store; the SeqCst
    // fences here and in `tree::mark_done` forbid that (tree invariant 5),
    // so either the walk sees the slot and removes the entry, or this load
    // sees the state.
    fence(Ordering::SeqCst);
    if node.state() != LIVE {
        heap.remove(node);
        return;
    }
    if at < heap.sleeps_until {
        heap.sleeps_until = at;
        TIMER.wake.notify_one();
    }
    start_thread(&mut heap);
}

/// Disarms `node`'s deadline if it is still queued.
pub(crate) fn remove(node: &Node) {
    lock().remove(node);
}

/// How many deadlines are armed.
pub(crate) fn len() -> usize {
    lock().entries.len()
}

/// In a forked child, on its first polyctx call: start a thread for the
/// deadlines it inherited.
pub(crate) fn restart() {
    let mut heap = lock();
    if !heap.entries.is_empty() {
        start_thread(&mut heap);
    }
}

/// In a forked child, which has no timer thread: forget the parent's. The
/// lock is held by the forking thread (see `fork`).
pub(crate) fn forget_thread(heap: &mut Heap) {
    heap.thread_running = false;
    heap.sleeps_until = clock::NEVER;
}

pub(crate) fn lock() -> MutexGuard<'static, Heap> {
    // Cancellations run with the lock released, so nothing can poison it but
    // a polyctx bug that already panicked; carry on.
    TIMER.heap.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Under Shuttle there is no timer thread (it would wait for ever, which
/// Shuttle takes for a deadlock): the tests fire deadlines with `fire_all`.
#[cfg(polyctx_shuttle)]
fn start_thread(_: &mut Heap) {}

#[cfg(not(polyctx_shuttle))]
fn start_thread(heap: &mut Heap) {
    if heap.thread_running {
        return;
    }
    match std::thread::Builder::new().name("polyctx-timer".into()).spawn(run) {
        Ok(_) => heap.thread_running = true,
        // Out of threads: the deadline stays queued and the next timer
        // operation tries again. Never panic here: callers may be C code.
        Err(e) => eprintln!("polyctx: cannot start the timer thread yet ({e}); deadlines wait for it"),
    }
}

#[cfg_attr(polyctx_shuttle, allow(dead_code))]
fn run() {
    let mut heap = lock();
    let mut due = Vec::new();
    loop {
        let now = clock::now_ns();
        take_due(&mut heap, now, &mut due);
        if !due.is_empty() {
            drop(heap);
            fire(&mut due);
            heap = lock();
            continue;
        }
        heap.sleeps_until = heap.entries.first().map_or(clock::NEVER, |e| e.at);
        heap = match heap.entries.first().map(|e| e.at) {
            Some(at) => match TIMER.wake.wait_timeout(heap, Duration::from_nanos(at - now)) {
                Ok((heap, _)) => heap,
                Err(poisoned) => poisoned.into_inner().0,
            },
            None => TIMER.wake.wait(heap).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Moves the entries due at `now` out of the heap into `due`, pinning
/// their nodes (a node whose last handle is being dropped is skipped: its
/// drop disarms nothing, the entry is already gone).
fn take_due(heap: &mut Heap, now: u64, due: &mut Vec<NodeRef>) {
    while let Some(entry) = heap.entries.first().filter(|e| e.at <= now).copied() {
        // Pinned before it leaves the heap: a last drop that sees the entry
        // still queued waits for this lock to remove it (`tree::unhook`),
        // but one that sees it gone frees the node at once.
        // SAFETY: the entry is in the heap and the timer lock is held.
        let pinned = unsafe { NodeRef::try_retain(entry.node) };
        heap.remove_at(0);
        due.extend(pinned);
    }
}

/// What the timer thread does once every armed deadline is due, for the
/// Shuttle tests, which have neither the thread nor a clock to wait on.
#[cfg(all(test, polyctx_shuttle))]
pub(crate) fn fire_all() {
    let mut due = Vec::new();
    take_due(&mut lock(), u64::MAX, &mut due);
    fire(&mut due);
}

fn fire(due: &mut Vec<NodeRef>) {
    for node in due.drain(..) {
        // A panicking on-done callback must not kill the thread every
        // deadline depends on; the panic has already been reported by the hook.
        let _ = std::panic::catch_unwind(|| cancel(&node, Reason::Deadline, true));
    }
}

fn slot_of(entry: &Entry) -> &AtomicU32 {
    // SAFETY: heap entries point to live nodes while the timer lock is held
    // (node invariant 1), and every caller holds it.
    unsafe { &entry.node.as_ref().cancel_part().timer_slot }
}

impl Heap {
    fn set(&mut self, i: usize, entry: Entry) {
        slot_of(&entry).store(i as u32, Ordering::Relaxed);
        self.entries[i] = entry;
    }

    fn sift_up(&mut self, mut i: usize) {
        let entry = self.entries[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.entries[parent].at <= entry.at {
                break;
            }
            self.set(i, self.entries[parent]);
            i = parent;
        }
        self.set(i, entry);
    }

    fn sift_down(&mut self, mut i: usize) {
        let entry = self.entries[i];
        let n = self.entries.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.entries[right].at < self.entries[left].at {
                right
            } else {
                left
            };
            if self.entries[child].at >= entry.at {
                break;
            }
            self.set(i, self.entries[child]);
            i = child;
        }
        self.set(i, entry);
    }

    fn remove(&mut self, node: &Node) {
        let slot = node.cancel_part().timer_slot.load(Ordering::Relaxed);
        if slot != NOT_QUEUED {
            self.remove_at(slot as usize);
        }
    }

    fn remove_at(&mut self, i: usize) -> Entry {
        let last = self.entries.pop().expect("a queued entry");
        let removed = if i == self.entries.len() {
            last
        } else {
            let removed = self.entries[i];
            self.entries[i] = last;
            if i > 0 && self.entries[(i - 1) / 2].at > last.at {
                self.sift_up(i);
            } else {
                self.sift_down(i);
            }
            removed
        };
        // Release: the last touch of a node whose last drop may see this
        // (Acquire, in `tree::unhook`) and free it without the timer lock.
        slot_of(&removed).store(NOT_QUEUED, Ordering::Release);
        // Give memory back after a burst of deadlines has drained.
        if self.entries.capacity() > 1024 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        removed
    }
}
