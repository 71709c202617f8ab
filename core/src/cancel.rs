//! The handles that cancel: Go's `CancelFunc` and `CancelCauseFunc`, a
//! guard for `defer cancel()`, and the either-kind form bindings keep.

use crate::error::Cause;
use crate::node::NodeRef;
use crate::tree::{cancel, Reason};

/// The handle that cancels a context made by [`with_cancel`](crate::with_cancel),
/// [`with_deadline`](crate::with_deadline) or [`with_timeout`](crate::with_timeout).
///
/// Only its holder can cancel the context; code that receives the context
/// cannot. Calling [`cancel`](CancelFunc::cancel) more than once does nothing
/// more. Clones cancel the same context.
///
/// **Dropping a `CancelFunc` without calling it does not cancel the context**,
/// as in Go: the context stays live until an ancestor is canceled or its
/// deadline passes. Its resources are still freed once every handle to it is
/// gone, because a parent never keeps a child alive. To cancel when a scope
/// ends (Go's `defer cancel()`), use [`CancelFunc::guard`].
#[derive(Clone)]
#[must_use = "a context whose cancel func is dropped stays live until its parent is done or its deadline passes"]
pub struct CancelFunc {
    pub(crate) node: NodeRef,
}

impl CancelFunc {
    /// Cancels the context and its descendants with [`Error::Canceled`], waking
    /// every waiter and running on-done callbacks on this thread before it
    /// returns. Does nothing if the context is already done.
    pub fn cancel(&self) {
        cancel(&self.node, Reason::Cancel(None), true);
    }

    /// A guard that cancels the context when dropped: `let _cancel = cancel.guard();`
    pub fn guard(self) -> CancelGuard {
        CancelGuard(self)
    }
}

impl std::fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelFunc")
            .field(&crate::Context {
                node: self.node.clone(),
            })
            .finish()
    }
}

/// Cancels its context when dropped (Go's `defer cancel()`).
#[derive(Debug)]
#[must_use = "dropping the guard at once cancels the context at once"]
pub struct CancelGuard(CancelFunc);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The handle that cancels a context made by
/// [`with_cancel_cause`](crate::with_cancel_cause), recording why.
///
/// Dropping it without calling it does not cancel the context (see [`CancelFunc`]).
#[derive(Clone)]
#[must_use = "a context whose cancel func is dropped stays live until its parent is done or its deadline passes"]
pub struct CancelCauseFunc {
    pub(crate) node: NodeRef,
}

impl CancelCauseFunc {
    /// Cancels the context with [`Error::Canceled`] and `cause` (Go's
    /// `cancel(cause)`; `None` is Go's `nil`, making the cause `Canceled`).
    /// Only the first cancellation of a context sets its cause.
    pub fn cancel(&self, cause: Option<Cause>) {
        cancel(&self.node, Reason::Cancel(cause), true);
    }

    /// A guard that cancels the context, without a cause, when dropped.
    pub fn guard(self) -> CancelGuard {
        CancelGuard(CancelFunc { node: self.node })
    }
}

impl std::fmt::Debug for CancelCauseFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelCauseFunc")
            .field(&crate::Context {
                node: self.node.clone(),
            })
            .finish()
    }
}

/// Either kind of cancel function, for bindings that keep one per context
/// whatever made it: their own handle tables and the C ABI's `ctx_cancel_t`.
#[derive(Clone, Debug)]
pub enum AnyCancelFunc {
    /// From `with_cancel`, `with_deadline` or `with_timeout`: takes no cause.
    Plain(CancelFunc),
    /// From `with_cancel_cause`: may record a cause.
    Cause(CancelCauseFunc),
}

impl AnyCancelFunc {
    /// Cancels without a cause.
    pub fn cancel(&self) {
        match self {
            AnyCancelFunc::Plain(f) => f.cancel(),
            AnyCancelFunc::Cause(f) => f.cancel(None),
        }
    }

    /// Cancels with `cause` if this kind records causes; a plain cancel
    /// function refuses (and does not cancel), as Go's types would.
    pub fn cancel_with_cause(&self, cause: Option<Cause>) -> Result<(), CauseNotAccepted> {
        match self {
            AnyCancelFunc::Plain(_) => Err(CauseNotAccepted),
            AnyCancelFunc::Cause(f) => {
                f.cancel(cause);
                Ok(())
            }
        }
    }

    /// True for the kind that records causes.
    pub fn takes_cause(&self) -> bool {
        matches!(self, AnyCancelFunc::Cause(_))
    }

    fn node(&self) -> &NodeRef {
        match self {
            AnyCancelFunc::Plain(f) => &f.node,
            AnyCancelFunc::Cause(f) => &f.node,
        }
    }

    /// The context this function cancels.
    pub fn context(&self) -> crate::Context {
        crate::Context {
            node: self.node().clone(),
        }
    }
}

impl From<CancelFunc> for AnyCancelFunc {
    fn from(f: CancelFunc) -> Self {
        AnyCancelFunc::Plain(f)
    }
}

impl From<CancelCauseFunc> for AnyCancelFunc {
    fn from(f: CancelCauseFunc) -> Self {
        AnyCancelFunc::Cause(f)
    }
}

/// A cause given to a cancel function that does not record causes (one
/// from `with_cancel`, `with_deadline` or `with_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CauseNotAccepted;

impl std::fmt::Display for CauseNotAccepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("this cancel function takes no cause; derive with with_cancel_cause to record one")
    }
}

impl std::error::Error for CauseNotAccepted {}
