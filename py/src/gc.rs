//! How the Python objects the core holds stay visible to Python's cycle
//! collector.
//!
//! The core keeps Python objects where the collector cannot see them: a value
//! stored with `with_value` (one strong reference, owned by the value node
//! through `cabi::with_value`), a cause given to a cancel function or a
//! deadline (one strong reference, owned by the cause's shared box, which the
//! node and its canceled descendants share). `except Exception as e:
//! cancel(e)` in a frame that holds the context, or `obj.ctx =
//! with_value(parent, KEY, obj)`, then makes a cycle the collector never
//! frees, unless something visits those references.
//!
//! # The rule
//! CPython's collector subtracts one from an object's count for every visit,
//! so each strong reference must be visited exactly once, by the one object
//! that owns it: visiting it from two objects (every wrapper of a chain, or a
//! context and its cancel function) makes a live object look unreachable,
//! and the collector clears it while it is in use. Visiting too few is safe:
//! the object just looks referenced from outside and is not collected.
//!
//! 1. The `Context` that a `with_*` function returns is its node's *owner*.
//!    It visits what its node holds: its value (twice: the node's reference
//!    and its own), the cause of its deadline (a clone of which it keeps, so
//!    that it can reach it before the deadline passes), and the cause its
//!    node was canceled with, unless that cause was inherited from its parent
//!    (the same shared box as the parent's cause: the ancestor where it was
//!    given owns it). Nothing else visits them.
//! 2. Every owner holds its parent's `Context` (a strong reference, visited),
//!    so a chain that reaches a payload is a chain the collector sees.
//!    Cancel functions, scopes and pairs hold the `Context`, never the node
//!    alone.
//! 3. Other wrappers of a node (`Context.from_c`, the roots) own nothing and
//!    visit nothing.
//! 4. A node handed to C (`Context.to_c()`) may be held where Python cannot
//!    see, and so may its ancestors: its owner and every owner up its chain
//!    stop visiting node-held references for good (they still visit their own
//!    references). Cycles through such contexts are not collected.
//!
//! Not covered: a function given to `after_func` is held by the core only
//! until its context is done or it is stopped (a context whose cancel
//! function is never called warns about that already); the waits of an
//! event loop are held by its `Waker`, which traverses them.
//!
//! What is visited does not change during a collection, though causes may
//! (the collector holds the GIL, but the core's timer thread and C threads
//! do not need it): a cause set meanwhile is either a deadline cause, which
//! the owner visits through its clone before and after, or a cause inherited
//! from the parent, which it never visits. Only Python code (with the GIL)
//! gives a node a cause of its own.
//!
//! A cycle through a context also runs through a Python object that the
//! collector clears: the value (or whatever refers back from it), or the
//! exception (exceptions clear their traceback, arguments and attributes),
//! or a frame. A context's own `__clear__` drops what it owns on the Python
//! side and keeps its node, so a context that survives a collection still
//! works. `tests/test_gc.py` checks the edges with `gc.get_referents`, that
//! the visits equal the references held, and that the cycles are freed.

use std::cell::RefCell;

use pyo3::prelude::*;

thread_local! {
    /// Objects whose release is deferred while another release is running on
    /// this thread (see [`release`]).
    static DEFERRED: RefCell<Option<Vec<Py<PyAny>>>> = const { RefCell::new(None) };
}

/// Drops `obj` without recursing: a context holds its parent, so freeing the
/// last handle of a chain a million deep would otherwise free a million
/// wrappers on one C stack. A release that starts inside another one is
/// queued, and the outermost one frees the queue (CPython's "trashcan").
/// Called only while attached to the interpreter (from `tp_dealloc`).
pub(crate) fn release(obj: Py<PyAny>) {
    let mut obj = Some(obj);
    // During thread teardown the queue may be gone: drop at once then.
    let first = DEFERRED.try_with(|d| {
        let mut d = d.borrow_mut();
        match d.as_mut() {
            Some(queue) => {
                queue.extend(obj.take());
                false
            }
            None => {
                *d = Some(Vec::new());
                true
            }
        }
    });
    drop(obj);
    if !matches!(first, Ok(true)) {
        return;
    }
    while let Some(next) = DEFERRED.with(|d| d.borrow_mut().as_mut().and_then(Vec::pop)) {
        drop(next);
    }
    DEFERRED.with(|d| *d.borrow_mut() = None);
}
