//! Waiting for a context to be done: blocking a thread, or a `Future`.
//! Both register a callback slot (`callback`) that unparks the thread or
//! wakes the task, and check the state after registering, so that no
//! wake-up is lost; they unregister when they stop waiting.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

use std::sync::Arc;

use crate::callback::{self, Action, Slot};
use crate::node::NodeRef;
use crate::sync::thread;
use crate::{clock, fork, tree, Context};

/// Blocks until `ctx` is done or `deadline` passes; true if it is done.
pub(crate) fn block(ctx: &Context, deadline: Option<Instant>) -> bool {
    let Some(signal) = ctx.node.signal_ref() else {
        // Never done: wait out the deadline, or for ever.
        match deadline {
            Some(d) => thread::sleep(d.saturating_duration_since(Instant::now())),
            None => loop {
                thread::park();
            },
        }
        return false;
    };
    let c = signal.cancel_part();
    if !c.is_live() {
        return true;
    }
    fork::check();
    let Some(slot) = callback::register_waiter(&signal, Action::Unpark(thread::current())) else {
        return true; // done while registering
    };
    // The context's own deadline: a waiter that wakes at it fires it
    // itself rather than wait for the timer thread to be scheduled, which
    // on a loaded machine is a second trip through the run queue. Firing
    // may find the deadline's owner already being canceled by another
    // thread (the timer's walk, say), which then reaches this context a
    // moment later and unparks this waiter: so keep waiting for the state.
    let mut expires = (c.deadline != clock::NEVER).then(|| clock::to_instant(c.deadline));
    // `park` may return spuriously; only the state and the clock decide.
    while c.is_live() {
        let now = Instant::now();
        if expires.is_some_and(|e| now >= e) {
            tree::expire(&signal);
            expires = None;
            continue;
        }
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let until = match (deadline, expires) {
            (Some(d), Some(e)) => Some(d.min(e)),
            (d, e) => d.or(e),
        };
        match until {
            None => thread::park(),
            Some(u) => thread::park_timeout(u.saturating_duration_since(now)),
        }
    }
    callback::stop_waiter(&signal, &slot);
    !c.is_live()
}

/// The future returned by [`Context::done`].
#[must_use = "futures do nothing unless polled"]
pub struct Done {
    signal: Option<NodeRef>,
    /// The slot that wakes the task, and which waker it wakes.
    waiting: Option<(Arc<Slot>, WakerId)>,
}

/// What `Waker::will_wake` compares, kept without a second clone of the
/// waker: its data pointer and its vtable, as addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
struct WakerId(usize, usize);

impl WakerId {
    fn of(waker: &Waker) -> WakerId {
        WakerId(waker.data().addr(), std::ptr::from_ref(waker.vtable()).addr())
    }
}

impl Done {
    pub(crate) fn new(ctx: &Context) -> Done {
        Done {
            signal: ctx.node.signal_ref(),
            waiting: None,
        }
    }
}

impl Future for Done {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(signal) = &this.signal else {
            return Poll::Pending;
        };
        let c = signal.cancel_part();
        if !c.is_live() {
            return Poll::Ready(());
        }
        let id = WakerId::of(cx.waker());
        if let Some((_, waker)) = &this.waiting {
            if *waker == id {
                return Poll::Pending;
            }
        }
        // Polled by another task: move the registration to its waker.
        if let Some((slot, _)) = this.waiting.take() {
            callback::stop_waiter(signal, &slot);
        }
        fork::check();
        match callback::register_waiter(signal, Action::Wake(cx.waker().clone())) {
            Some(slot) => this.waiting = Some((slot, id)),
            None => return Poll::Ready(()),
        }
        if !c.is_live() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let (Some(signal), Some((slot, _))) = (&self.signal, self.waiting.take()) {
            callback::stop_waiter(signal, &slot);
        }
    }
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Done")
            .field("listening", &self.waiting.is_some())
            .finish()
    }
}
