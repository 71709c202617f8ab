//! Go's `context` model in Rust: cancellation trees, deadlines, causes and
//! request-scoped values, shared by polyctx's C, Python and Node bindings.
//!
//! ```
//! use std::time::Duration;
//! use polyctx::{with_cancel, with_timeout, Context, Error};
//!
//! let request = Context::background();
//! let (ctx, cancel) = with_timeout(&request, Duration::from_secs(2));
//! let _cancel = cancel.guard(); // Go's `defer cancel()`
//!
//! let (child, cancel_child) = with_cancel(&ctx);
//! assert!(child.deadline() == ctx.deadline()); // deadlines flow down
//! cancel_child.cancel();
//! assert_eq!(child.err(), Some(Error::Canceled));
//! assert_eq!(ctx.err(), None); // cancellation never flows up
//! ```
//!
//! Semantics are exactly Go's (see each function). Beyond Go:
//! - A child whose every handle is dropped detaches from its parent and
//!   disarms its deadline, so forgetting to cancel leaks nothing.
//! - Cancel, drop, lookup and `Display` are iterative: million-deep chains
//!   are fine.
//! - One lazily started timer thread serves every deadline in the process.
//! - [`Context::is_done`] and [`Context::err`] are one atomic load, and waits
//!   come in every form: [`Context::done`] (a `Future` for any executor),
//!   [`Context::wait_timeout`] for threads, [`Context::on_done`] callbacks.

// Module map. The tree of contexts: `node` (layout and reference counts) <-
// `tree` (everything under a node lock: linking, the cancel walk, callback
// lists, freeing; its invariants and lock order open the file) <- `context`
// (the public API). Around it: `lock` (the striped node locks), `timer` (the
// one deadline thread; calls only `tree::cancel`), `callback` (on-done
// callbacks, after-funcs and waiters, one slot type), `pool` (the threads
// that run after-funcs), `wait` (blocking waits and the `Done` future),
// `fork` (what a forked child inherits). `wire`: what crosses between
// services (timeouts, trace context, baggage, end reasons). Plus `cancel` (the cancel
// handles), `patterns` (group, retry, sleep), `debug` (lost cancels,
// live-context tracking), `foreign` (values from other languages, with their finalizers), `value`, `error`, `display`, `clock`, `raw` (pointers for
// bindings), `wake_fd` and `stats`. `sync`: std's primitives, or Shuttle's
// under `--cfg polyctx_shuttle` for `shuttle_tests`.
mod callback;
mod cancel;
pub mod clock;
mod context;
pub mod debug;
mod display;
mod error;
pub mod foreign;
mod fork;
mod lock;
mod node;
pub mod patterns;
mod pool;
mod rand;
mod raw;
pub mod stats;
mod sync;
mod timer;
mod tree;
mod value;
mod wait;
mod wake_fd;
pub mod wire;

#[cfg(all(test, polyctx_shuttle))]
mod shuttle_tests;

pub use callback::{after_func, AfterFunc, Registration};
pub use cancel::{AnyCancelFunc, CancelCauseFunc, CancelFunc, CancelGuard, CauseNotAccepted};
pub use context::{
    cause, with_cancel, with_cancel_cause, with_deadline, with_deadline_cause, with_deadline_ns, with_timeout,
    with_timeout_cause, with_timeout_ns, with_value, without_cancel, Context,
};
pub use error::{Cause, Error, Message};
pub use foreign::{ForeignBytes, ForeignPtr, ForeignValue, Owner};
pub use value::Key;
pub use wait::Done;
pub use wake_fd::WakeFd;

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

// The guides' Rust examples, run as doctests like the README's.
#[cfg(doctest)]
#[doc = include_str!("../../docs/rust.md")]
mod docs_rust {}

#[cfg(doctest)]
#[doc = include_str!("../../docs/wire.md")]
mod docs_wire {}
