//! `Context::done()` is a plain `Future`: it works on any executor. Driven
//! here by a hand-written one, since the core depends on no async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use polyctx::{with_cancel, with_timeout, Context};

/// Wakes a parked thread, counting wake-ups.
struct ThreadWaker {
    thread: Thread,
    wakes: AtomicUsize,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    }));
    let mut cx = TaskContext::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut TaskContext::from_waker(waker))
}

#[test]
fn resolves_when_canceled_from_another_thread() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let t = thread::spawn(move || cancel.cancel());
    block_on(ctx.done());
    assert!(ctx.is_done());
    t.join().unwrap();
}

#[test]
fn resolves_when_a_deadline_fires() {
    let (ctx, _cancel) = with_timeout(&Context::background(), Duration::from_millis(20));
    block_on(ctx.done());
    assert!(ctx.is_done());
}

#[test]
fn ready_at_once_when_already_done() {
    let (ctx, cancel) = with_cancel(&Context::background());
    cancel.cancel();
    let waker = Waker::from(Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    }));
    assert!(poll_once(&mut ctx.done(), &waker).is_ready());
}

#[test]
fn never_ready_for_a_context_that_cannot_be_done() {
    let noop = Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(noop.clone());
    let mut done = Context::background().done();
    assert!(poll_once(&mut done, &waker).is_pending());
    assert!(poll_once(&mut done, &waker).is_pending());
    assert_eq!(noop.wakes.load(Ordering::SeqCst), 0);
}

#[test]
fn one_cancel_wakes_ten_thousand_waiters_once_each() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let counter = Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(counter.clone());
    let mut futures: Vec<_> = (0..10_000).map(|_| ctx.done()).collect();
    for f in &mut futures {
        assert!(poll_once(f, &waker).is_pending());
    }
    cancel.cancel();
    assert_eq!(counter.wakes.load(Ordering::SeqCst), 10_000);
    assert!(futures.iter_mut().all(|f| poll_once(f, &waker).is_ready()));
}

#[test]
fn a_dropped_future_is_not_woken() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let counter = Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(counter.clone());
    let mut kept = ctx.done();
    let mut dropped = ctx.done();
    assert!(poll_once(&mut kept, &waker).is_pending());
    assert!(poll_once(&mut dropped, &waker).is_pending());
    drop(dropped);
    cancel.cancel();
    assert_eq!(counter.wakes.load(Ordering::SeqCst), 1);
}

#[test]
fn waiters_on_many_threads() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let woken = Arc::new(Mutex::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (ctx, woken) = (ctx.clone(), woken.clone());
            thread::spawn(move || {
                block_on(ctx.done());
                *woken.lock().unwrap() += 1;
            })
        })
        .collect();
    cancel.cancel();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*woken.lock().unwrap(), 8);
}
