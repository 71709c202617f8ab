//! AfterFunc, following Go's x_test.go (TestAfterFunc*) and
//! afterfunc_test.go, plus the low-level `on_done` callbacks built beside it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use polyctx::{after_func, stats, with_cancel, with_timeout, Context};

const PATIENCE: Duration = Duration::from_secs(20);
/// How long to watch for something that must not happen.
const SHORT: Duration = Duration::from_millis(50);

// Go: TestAfterFuncCalledAfterCancel
#[test]
fn called_after_cancel() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let (tx, rx) = mpsc::channel();
    let stop = after_func(&ctx, move || tx.send(()).unwrap());
    assert!(rx.recv_timeout(SHORT).is_err(), "called before the context is done");
    cancel.cancel();
    rx.recv_timeout(PATIENCE).expect("not called after cancel");
    assert!(!stop.stop(), "stop after the call started");
}

// Go: TestAfterFuncCalledAfterTimeout
#[test]
fn called_after_timeout() {
    let (ctx, _cancel) = with_timeout(&Context::background(), Duration::from_millis(20));
    let (tx, rx) = mpsc::channel();
    let _stop = after_func(&ctx, move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE).expect("not called after the timeout");
}

// Go: TestAfterFuncCalledImmediately
#[test]
fn called_immediately_when_already_done() {
    let (ctx, cancel) = with_cancel(&Context::background());
    cancel.cancel();
    let (tx, rx) = mpsc::channel();
    let stop = after_func(&ctx, move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE)
        .expect("not called for an already-canceled context");
    assert!(!stop.stop());
}

// Go: TestAfterFuncNotCalledAfterStop
#[test]
fn not_called_after_stop() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let (tx, rx) = mpsc::channel::<()>();
    let stop = after_func(&ctx, move || tx.send(()).unwrap());
    assert!(stop.stop(), "first stop keeps f from running");
    cancel.cancel();
    // The sender was dropped with f, so the channel reports disconnection.
    assert_eq!(rx.recv_timeout(SHORT), Err(mpsc::RecvTimeoutError::Disconnected));
    assert!(!stop.stop(), "second stop");
}

// Go: TestAfterFuncCalledAsynchronously
#[test]
fn called_on_its_own_thread() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let (tx, rx) = mpsc::sync_channel(0);
    let caller = thread::current().id();
    let _stop = after_func(&ctx, move || tx.send(thread::current().id()).unwrap());
    // Would deadlock if cancel waited for f, which blocks until we receive.
    cancel.cancel();
    let ran_on = rx.recv_timeout(PATIENCE).expect("not called");
    assert_ne!(ran_on, caller);
}

// Go: TestCancelRemoves (AfterFunc part) and TestAfterFunc on Background:
// stop reports true, and f never runs.
#[test]
fn never_done_context() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let stop = after_func(&Context::background(), move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(stop.stop());
    assert!(!stop.stop());
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn runs_once_however_often_canceled() {
    let (parent, cancel_parent) = with_cancel(&Context::background());
    let (ctx, cancel) = with_cancel(&parent);
    let (tx, rx) = mpsc::channel();
    let _stop = after_func(&ctx, move || tx.send(()).unwrap());
    cancel.cancel();
    cancel.cancel();
    cancel_parent.cancel();
    rx.recv_timeout(PATIENCE).expect("not called");
    assert!(rx.recv_timeout(SHORT).is_err(), "called twice");
}

#[test]
fn independent_registrations() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let (tx, rx) = mpsc::channel();
    let stops: Vec<_> = (0..10)
        .map(|i| {
            let tx = tx.clone();
            after_func(&ctx, move || tx.send(i).unwrap())
        })
        .collect();
    assert!(stops[3].stop());
    cancel.cancel();
    let mut got: Vec<i32> = (0..9).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    got.sort();
    assert_eq!(got, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn on_done_runs_on_the_cancelling_thread_before_cancel_returns() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let ran_on = Arc::new(cell::Slot::default());
    let r = ran_on.clone();
    let _reg = ctx.on_done(move || r.set(thread::current().id()));
    cancel.cancel();
    assert_eq!(ran_on.get(), Some(thread::current().id()));
}

#[test]
fn on_done_may_reenter_the_library() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let (other, cancel_other) = with_cancel(&Context::background());
    let inner = ctx.clone();
    let _reg = ctx.on_done(move || {
        // Deriving from and cancelling contexts inside a callback must not deadlock.
        let (child, _c) = with_cancel(&inner);
        assert!(child.is_done());
        cancel_other.cancel();
    });
    cancel.cancel();
    assert!(other.is_done());
}

#[test]
fn a_panicking_callback_does_not_stop_the_others() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let runs = Arc::new(AtomicUsize::new(0));
    let regs: Vec<_> = (0..3)
        .map(|i| {
            let runs = runs.clone();
            ctx.on_done(move || {
                runs.fetch_add(1, Ordering::SeqCst);
                assert_ne!(i, 1, "callback 1 panics on purpose");
            })
        })
        .collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cancel.cancel()));
    assert!(result.is_err(), "the panic is reported to the canceller");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(ctx.is_done());
    drop(regs);
}

#[test]
fn pending_callback_keeps_context_reachable_from_its_parent() {
    let (parent, cancel) = with_cancel(&Context::background());
    let (tx, rx) = mpsc::channel();
    {
        let (child, _forgotten) = with_cancel(&parent);
        let _stop = after_func(&child, move || tx.send(()).unwrap());
    } // every handle to `child` dropped; only its after-func remains
    assert_eq!(stats::children(&parent), 1);
    cancel.cancel();
    rx.recv_timeout(PATIENCE)
        .expect("parent's cancel must still reach the after-func");
}

#[test]
fn stopped_callback_releases_its_context() {
    let (parent, _cancel) = with_cancel(&Context::background());
    let (child, forgotten) = with_cancel(&parent);
    let stop = after_func(&child, || {});
    drop((child, forgotten));
    assert_eq!(stats::children(&parent), 1);
    assert!(stop.stop());
    drop(stop);
    assert_eq!(stats::children(&parent), 0);
}

/// A tiny once-cell, to keep this test file free of dependencies.
mod cell {
    use std::sync::Mutex;
    use std::thread::ThreadId;

    #[derive(Default)]
    pub struct Slot(Mutex<Option<ThreadId>>);
    impl Slot {
        pub fn set(&self, id: ThreadId) {
            *self.0.lock().unwrap() = Some(id);
        }
        pub fn get(&self) -> Option<ThreadId> {
            *self.0.lock().unwrap()
        }
    }
}
