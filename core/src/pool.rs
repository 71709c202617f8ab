//! The threads that run after-funcs: Go runs each `AfterFunc` in a goroutine
//! of its own; polyctx cannot afford an OS thread each (10,000 after-funcs
//! would be 10,000 threads), so it runs them on a small pool that grows only
//! when every thread it has is stuck.
//!
//! - A batch of functions (one cancel walk's) is queued under one lock, and
//!   as many idle workers are woken as there are functions.
//! - Up to `EAGER_WORKERS` workers are started at once, without waiting.
//! - Beyond that, a watcher thread adds one worker whenever functions wait
//!   and no worker has taken one for `STALL`: a function that blocks holds up
//!   the rest for about that long, and the pool stays at about as many
//!   threads as functions blocked at once, plus a few. `MAX_WORKERS` is a
//!   ceiling against pathological programs, not a working size.
//! - Idle workers (and the watcher) exit after `IDLE_EXIT`.
//! - If no thread can be started at all, a function runs on the submitting
//!   thread rather than be lost.
//!
//! Lock order: the pool lock is never held with a node or timer lock, nor
//! while a function runs. Fork: the `fork` module holds the lock across
//! `fork()`; the child has none of the parent's threads, so it forgets them
//! and starts workers for what is queued on its next polyctx call.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use crate::callback::Callback;
use crate::sync::{Condvar, Mutex, MutexGuard};

const EAGER_WORKERS: usize = 2;
const MAX_WORKERS: usize = 1024;
const STALL: Duration = Duration::from_millis(1);
const IDLE_EXIT: Duration = Duration::from_secs(5);

pub(crate) struct State {
    queue: VecDeque<Callback>,
    workers: usize,
    /// Workers waiting for work.
    idle: usize,
    /// Functions taken from the queue so far: the watcher's sign of progress.
    taken: u64,
    watcher: bool,
    /// The watcher is waiting for work rather than timing a stall.
    watcher_parked: bool,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
    watch: Condvar,
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        queue: VecDeque::new(),
        workers: 0,
        idle: 0,
        taken: 0,
        watcher: false,
        watcher_parked: false,
    }),
    work: Condvar::new(),
    watch: Condvar::new(),
};

pub(crate) fn lock() -> MutexGuard<'static, State> {
    // Functions run with the lock released, so nothing can poison it but a
    // polyctx bug that already panicked; carry on.
    POOL.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Queues `jobs` to run on the pool.
pub(crate) fn submit(jobs: Vec<Callback>) {
    crate::fork::check();
    let mut s = lock();
    s.queue.extend(jobs);
    start(&mut s);
    if s.workers == 0 {
        // No thread could be started: run here rather than lose them.
        let jobs = std::mem::take(&mut s.queue);
        drop(s);
        for job in jobs {
            let _ = catch_unwind(AssertUnwindSafe(job));
        }
    }
}

/// Puts workers on what is queued: wakes idle ones, starts eager ones, and
/// leaves the rest to the watcher.
fn start(s: &mut State) {
    let queued = s.queue.len();
    if queued == 0 {
        return;
    }
    for _ in 0..s.idle.min(queued) {
        POOL.work.notify_one();
    }
    let unserved = queued.saturating_sub(s.idle);
    let eager = unserved.min(EAGER_WORKERS.saturating_sub(s.workers));
    for _ in 0..eager {
        if !spawn_worker(s) {
            break;
        }
    }
    if unserved > eager {
        if !s.watcher {
            s.watcher = spawn("polyctx-after-func-watch", watch);
        } else if s.watcher_parked {
            POOL.watch.notify_one();
        }
    }
}

fn spawn_worker(s: &mut State) -> bool {
    let started = spawn("polyctx-after-func", work);
    if started {
        s.workers += 1;
    }
    started
}

#[cfg(not(polyctx_shuttle))]
fn spawn(name: &str, f: fn()) -> bool {
    std::thread::Builder::new().name(name.into()).spawn(f).is_ok()
}

/// Under Shuttle a worker would wait for work for ever, which Shuttle takes
/// for a deadlock: functions run on the submitting thread, the path taken
/// when no thread can be started.
#[cfg(polyctx_shuttle)]
fn spawn(_: &str, _: fn()) -> bool {
    false
}

fn work() {
    let mut s = lock();
    loop {
        if let Some(job) = s.queue.pop_front() {
            s.taken += 1;
            drop(s);
            // A panic has been reported by the panic hook; the worker, and
            // every other function, carry on.
            let _ = catch_unwind(AssertUnwindSafe(job));
            s = lock();
            continue;
        }
        s.idle += 1;
        let (guard, wait) = POOL
            .work
            .wait_timeout(s, IDLE_EXIT)
            .unwrap_or_else(PoisonError::into_inner);
        s = guard;
        s.idle -= 1;
        if wait.timed_out() && s.queue.is_empty() {
            s.workers -= 1;
            return;
        }
    }
}

fn watch() {
    let mut s = lock();
    let mut seen = s.taken;
    let mut since = Instant::now();
    loop {
        if s.queue.is_empty() {
            s.watcher_parked = true;
            let (guard, wait) = POOL
                .watch
                .wait_timeout(s, IDLE_EXIT)
                .unwrap_or_else(PoisonError::into_inner);
            s = guard;
            s.watcher_parked = false;
            if wait.timed_out() && s.queue.is_empty() {
                s.watcher = false;
                return;
            }
            (seen, since) = (s.taken, Instant::now());
            continue;
        }
        let waited = since.elapsed();
        if waited < STALL {
            s = POOL
                .watch
                .wait_timeout(s, STALL - waited)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        let stuck = s.taken == seen && s.idle == 0 && !s.queue.is_empty();
        if stuck && s.workers < MAX_WORKERS {
            spawn_worker(&mut s);
        }
        (seen, since) = (s.taken, Instant::now());
    }
}

/// How many threads the pool has (workers and watcher), for tests and stats.
pub(crate) fn threads() -> usize {
    let s = lock();
    s.workers + usize::from(s.watcher)
}

/// In a forked child, which has none of the parent's threads: forget them.
/// The lock is held by the forking thread (see `fork`).
pub(crate) fn forget_threads(s: &mut State) {
    s.workers = 0;
    s.idle = 0;
    s.watcher = false;
    s.watcher_parked = false;
}

/// In a forked child, on its first polyctx call: start workers for the
/// functions that were queued when the parent forked.
pub(crate) fn restart() {
    let mut s = lock();
    start(&mut s);
}
