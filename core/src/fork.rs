//! `fork()`: a child process is a copy of the parent with only the forking
//! thread. Whatever lock another thread held at that instant would stay
//! held for ever in the child, and the timer and after-func threads would be
//! missing. So polyctx holds every lock it has across `fork()` (the node
//! lock table, the timer lock, the pool lock, in that order), which waits
//! out the short critical sections of other threads; none of them runs user
//! code, and no thread holds two, so this cannot deadlock. In the child the
//! locks are released, the missing threads forgotten, and they are started
//! again by the child's next polyctx call that needs them.
//!
//! What the child may then do: use every context it inherited (cancel,
//! derive, wait, values, deadlines, after-funcs) and make new ones, whatever
//! other threads of the parent were doing at the fork. What it cannot have:
//! the parent's threads (a wait that was blocked in the parent is not
//! blocked in the child), and callbacks that were running in the parent at
//! the instant of the fork do not run again in the child. Functions that
//! were queued for the after-func pool run in both.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::sync::MutexGuard;
use crate::{lock, pool, timer};

/// Set in a forked child until its first polyctx call restarts the threads.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Installs the fork handlers (once per process) and, in a forked child,
/// restarts the threads it lacks. Called where threads may be needed:
/// deriving, waiting, arming a deadline, submitting after-funcs. A load and
/// a relaxed load on the fast path.
#[inline]
pub(crate) fn check() {
    static INSTALL: Once = Once::new();
    if !INSTALL.is_completed() {
        INSTALL.call_once(install);
    }
    if FORKED.load(Ordering::Relaxed) {
        restart();
    }
}

#[cold]
fn restart() {
    if FORKED.swap(false, Ordering::Relaxed) {
        timer::restart();
        pool::restart();
    }
}

#[cfg(not(any(miri, polyctx_shuttle)))]
fn install() {
    // SAFETY: the handlers are `extern "C"` functions that never unwind and
    // live for the whole process.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    assert_eq!(rc, 0, "polyctx: pthread_atfork failed");
}

// Miri cannot fork, nor register fork handlers, and Shuttle's threads do
// not survive a fork; the handlers stay compiled.
#[cfg(any(miri, polyctx_shuttle))]
fn install() {
    let _handlers: [extern "C" fn(); 3] = [prepare, parent, child];
}

/// The timer and pool locks, held across `fork()` (the node lock table is
/// held too, by `lock::lock_all`, without guards).
struct Held {
    timer: MutexGuard<'static, timer::Heap>,
    pool: MutexGuard<'static, pool::State>,
}

thread_local! {
    /// Every polyctx lock, held by the forking thread across `fork()`. The
    /// handlers all run on that thread (in the child, on its copy).
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

extern "C" fn prepare() {
    // Nothing here panics (poisoned locks are taken as they are); were it
    // to, an `extern "C"` function aborts rather than unwind into libc.
    lock::lock_all();
    let held = Held {
        timer: timer::lock(),
        pool: pool::lock(),
    };
    HELD.with(|h| *h.borrow_mut() = Some(held));
}

extern "C" fn parent() {
    HELD.with(|h| drop(h.borrow_mut().take()));
    lock::unlock_all();
}

extern "C" fn child() {
    HELD.with(|h| {
        if let Some(mut held) = h.borrow_mut().take() {
            timer::forget_thread(&mut held.timer);
            pool::forget_threads(&mut held.pool);
        }
    });
    lock::unlock_all();
    FORKED.store(true, Ordering::Relaxed);
}
