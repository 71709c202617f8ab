//! Waiting for a context to be done: blocking a thread, or a `Future`.
//! Both register a callback slot (`callback`) that unparks the thread or
//! wakes the task, and check the state after registering, so that no
//! wake-up is lost; they unregister when they stop waiting.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::thread;
use std::time::Instant;

use crate::callback::{self, Action, Registration};
use crate::node::NodeRef;
use crate::{fork, Context};

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
    let registration = callback::register(Some(signal.clone()), Action::Unpark(thread::current()));
    // `park` may return spuriously; only the state and the clock decide.
    while c.is_live() {
        match deadline {
            None => thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break;
                }
                thread::park_timeout(d - now);
            }
        }
    }
    registration.stop();
    !c.is_live()
}

/// The future returned by [`Context::done`].
#[must_use = "futures do nothing unless polled"]
pub struct Done {
    signal: Option<NodeRef>,
    /// The registration that wakes the task, and the waker it wakes.
    waiting: Option<(Registration, Waker)>,
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
        if let Some((_, waker)) = &this.waiting {
            if waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        // Polled by another task: move the registration to its waker.
        if let Some((registration, _)) = this.waiting.take() {
            registration.stop();
        }
        fork::check();
        let waker = cx.waker().clone();
        let registration = callback::register(Some(signal.clone()), Action::Wake(waker.clone()));
        this.waiting = Some((registration, waker));
        if !c.is_live() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some((registration, _)) = self.waiting.take() {
            registration.stop();
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
