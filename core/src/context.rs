//! The `Context` handle, its queries and waits, and the `with_*` functions
//! that derive new contexts.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::callback::{self, Action, Registration};
use crate::cancel::{CancelCauseFunc, CancelFunc};
use crate::clock::{self, NEVER};
use crate::error::{Cause, Error};
use crate::node::{error_of, Kind, Node, NodeRef, ValueNode, LIVE};
use crate::timer;
use crate::tree::{self, Reason};
use crate::value::Key;
use crate::wait::{self, Done};

/// A request's cancellation signal, deadline and values: Go's `context.Context`.
///
/// A `Context` is an immutable view of one node in a tree; `with_*` functions
/// derive children. Cloning is one atomic increment. Every method is safe to
/// call from any thread.
#[derive(Clone)]
pub struct Context {
    pub(crate) node: NodeRef,
}

static BACKGROUND: Node = Node::root(Kind::Background);
static TODO: Node = Node::root(Kind::Todo);

impl Context {
    /// The root of every tree: never done, no deadline, no values (Go's
    /// `context.Background()`). Does not allocate.
    pub fn background() -> Context {
        Context {
            node: NodeRef::from_static(&BACKGROUND),
        }
    }

    /// A placeholder root for code not yet given a context (Go's
    /// `context.TODO()`); behaves exactly like [`Context::background`].
    pub fn todo() -> Context {
        Context {
            node: NodeRef::from_static(&TODO),
        }
    }

    /// True once the context is done (canceled or past its deadline). One
    /// atomic load; never blocks.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.node.state() != LIVE
    }

    /// `None` while live; why it is done once it is. Set exactly when
    /// [`is_done`](Context::is_done) becomes true, never one without the other.
    #[inline]
    pub fn err(&self) -> Option<Error> {
        error_of(self.node.state())
    }

    /// When the context will be done by itself, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline_ns().map(clock::to_instant)
    }

    /// The deadline in [`clock`] nanoseconds (`CLOCK_MONOTONIC`), if any.
    pub fn deadline_ns(&self) -> Option<u64> {
        let deadline = self.node.signal()?.cancel_part().deadline;
        (deadline != NEVER).then_some(deadline)
    }

    /// The value stored under `key` by the nearest [`with_value`] ancestor,
    /// or `None`.
    pub fn value<T: 'static>(&self, key: &Key<T>) -> Option<&T> {
        let wanted = Arc::as_ptr(key.id());
        let mut node: &Node = &self.node;
        loop {
            if let Kind::Value(v) = &node.kind {
                if Arc::as_ptr(&v.key) == wanted {
                    let value: &dyn Any = &*v.value;
                    return value.downcast_ref::<T>();
                }
            }
            node = node.parent()?;
        }
    }

    /// A future that completes when the context is done (never, for a
    /// context that cannot be canceled). Works on any executor.
    pub fn done(&self) -> Done {
        Done::new(self)
    }

    /// Blocks the thread until the context is done. Blocks forever on a
    /// context that is never done, as Go's `<-ctx.Done()` does.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Blocks up to `timeout`; true if the context is done.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(Instant::now().checked_add(timeout).unwrap_or_else(far_future)))
    }

    /// Blocks until `deadline` at most; true if the context is done.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        wait::block(self, deadline)
    }

    /// Registers `f` to run once when the context is done: the building block
    /// for bindings that must hop onto their own event loop.
    ///
    /// `f` runs on the thread that cancels the context (the caller of a cancel
    /// function, or the timer thread for deadlines) after every lock is
    /// released, before that cancel returns; if the context is already done, it
    /// runs at once on this thread. It may call back into polyctx but should
    /// be quick. On a context that is never done it never runs. A pending
    /// callback keeps the context alive until it runs or is stopped.
    pub fn on_done<F: FnOnce() + Send + 'static>(&self, f: F) -> Registration {
        callback::register(self.node.signal_ref(), Action::Call(Box::new(f)))
    }

    /// True when both handles are the same context.
    pub fn same(&self, other: &Context) -> bool {
        self.node.ptr_eq(&other.node)
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::background()
    }
}

fn far_future() -> Instant {
    clock::to_instant(clock::MAX_DEADLINE_NS)
}

fn inherited_deadline(parent: &Context) -> u64 {
    parent.node.signal().map_or(NEVER, |s| s.cancel_part().deadline)
}

/// A child of `parent` that is canceled when the returned [`CancelFunc`] is
/// called or when `parent` is done, whichever happens first (Go's `WithCancel`).
#[track_caller]
pub fn with_cancel(parent: &Context) -> (Context, CancelFunc) {
    let (node, twin) = tree::new_node(&parent.node, inherited_deadline(parent), false, None);
    (Context { node }, CancelFunc { node: twin })
}

/// Like [`with_cancel`], but the cancel function records a cause, which
/// [`cause`] reports (Go's `WithCancelCause`).
#[track_caller]
pub fn with_cancel_cause(parent: &Context) -> (Context, CancelCauseFunc) {
    let (node, twin) = tree::new_node(&parent.node, inherited_deadline(parent), false, None);
    (Context { node }, CancelCauseFunc { node: twin })
}

/// A child of `parent` that is also done at `deadline` (Go's `WithDeadline`).
///
/// If `parent`'s deadline is earlier, the child simply inherits it and arms
/// no timer of its own. A deadline already past makes the child done at once
/// with [`Error::DeadlineExceeded`].
#[track_caller]
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelFunc) {
    deadline_child(parent, clock::from_instant(deadline), clock::now_ns(), None)
}

/// Like [`with_deadline`], and `cause` becomes the context's cause when the
/// deadline passes (not when it is canceled).
#[track_caller]
pub fn with_deadline_cause(parent: &Context, deadline: Instant, cause: Cause) -> (Context, CancelFunc) {
    deadline_child(parent, clock::from_instant(deadline), clock::now_ns(), Some(cause))
}

/// `with_deadline(parent, now + timeout)` (Go's `WithTimeout`). Timeouts too
/// large to represent saturate to a deadline centuries away.
#[track_caller]
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFunc) {
    timeout_child(parent, timeout, None)
}

/// Like [`with_timeout`], and `cause` becomes the context's cause when the
/// timeout expires (not when it is canceled).
#[track_caller]
pub fn with_timeout_cause(parent: &Context, timeout: Duration, cause: Cause) -> (Context, CancelFunc) {
    timeout_child(parent, timeout, Some(cause))
}

/// [`with_timeout`] for a signed timeout in nanoseconds, with an optional
/// cause: the form bindings call, so that every language treats a timeout
/// alike. Zero or negative gives a context already done with
/// [`Error::DeadlineExceeded`], as in Go; large ones saturate (see
/// [`clock::deadline_in`]).
#[track_caller]
pub fn with_timeout_ns(parent: &Context, timeout_ns: i64, cause: Option<Cause>) -> (Context, CancelFunc) {
    let now = clock::now_ns();
    deadline_child(parent, clock::deadline_in(now, timeout_ns), now, cause)
}

/// [`with_deadline`] for a deadline in [`clock`] nanoseconds, with an
/// optional cause. Deadlines beyond [`clock::MAX_DEADLINE_NS`] saturate there.
#[track_caller]
pub fn with_deadline_ns(parent: &Context, deadline_ns: u64, cause: Option<Cause>) -> (Context, CancelFunc) {
    deadline_child(parent, deadline_ns.min(clock::MAX_DEADLINE_NS), clock::now_ns(), cause)
}

#[track_caller]
fn timeout_child(parent: &Context, timeout: Duration, cause: Option<Cause>) -> (Context, CancelFunc) {
    // One clock read serves both the deadline and the "already past" check.
    let now = clock::now_ns();
    deadline_child(parent, clock::add(now, timeout), now, cause)
}

#[track_caller]
fn deadline_child(parent: &Context, at: u64, now: u64, cause: Option<Cause>) -> (Context, CancelFunc) {
    if inherited_deadline(parent) < at {
        return with_cancel(parent);
    }
    let (node, twin) = tree::new_node(&parent.node, at, true, cause);
    if at <= now {
        tree::cancel(&node, Reason::Deadline, true);
    } else if node.state() == LIVE {
        timer::insert(&node, at);
    }
    (Context { node }, CancelFunc { node: twin })
}

/// A child of `parent` carrying `value` under `key` (Go's `WithValue`). It
/// shadows any value an ancestor stored under the same key.
///
/// Use values for request-scoped data that crosses API boundaries (trace ids,
/// auth principals), not for optional parameters.
#[track_caller]
pub fn with_value<T: Send + Sync + 'static>(parent: &Context, key: &Key<T>, value: T) -> Context {
    let kind = Kind::Value(ValueNode {
        signal: parent.node.signal_ptr(),
        key: key.id().clone(),
        value: Box::new(value),
    });
    Context {
        node: NodeRef::new(Some(parent.node.clone()), kind),
    }
}

/// A child of `parent` that keeps its values but is never canceled: no
/// deadline, no error, no cause (Go's `WithoutCancel`). For work that must
/// outlive the request, such as a final audit log write.
#[track_caller]
pub fn without_cancel(parent: &Context) -> Context {
    Context {
        node: NodeRef::new(Some(parent.node.clone()), Kind::WithoutCancel),
    }
}

/// Why `ctx` is done: the cause given to the first cancellation of it or an
/// ancestor, or its [`err`](Context::err) when none was given; `None` while it
/// is live (Go's `context.Cause`).
pub fn cause(ctx: &Context) -> Option<Cause> {
    let c = ctx.node.signal()?.cancel_part();
    let err = error_of(c.state.load(crate::sync::atomic::Ordering::Acquire))?;
    Some(tree::final_cause(c).unwrap_or_else(|| Cause::of(err)))
}
