//! The primitives the tree, the timer, the callbacks and the pool
//! synchronise with: std's, or Shuttle's when the crate is built with
//! `--cfg polyctx_shuttle`. Shuttle runs threads one at a time and switches
//! between them at every atomic operation, lock and park, so the tests in
//! `shuttle_tests` explore interleavings of the real code (cancel against
//! derive, drop, waiters and the timer firing) rather than of a copy.
//!
//! Only the modules whose races matter import from here; counters that no
//! decision depends on (`debug`, `fork`, `rand`) keep std's types, which
//! also keeps Shuttle's search to the interleavings that matter.
//!
//! Shuttle models every atomic as SeqCst: weak-memory bugs (the store
//! buffering the tree's fences forbid) are Miri's job (`make test-miri`).

#[cfg(not(polyctx_shuttle))]
pub(crate) use std::{
    sync::{atomic, Condvar, Mutex, MutexGuard},
    thread, thread_local,
};

#[cfg(polyctx_shuttle)]
pub(crate) use shuttle::{
    sync::{atomic, Condvar, Mutex, MutexGuard},
    thread, thread_local,
};
