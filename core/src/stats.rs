//! Introspection for tests and metrics: what a context tree, the timer and
//! the after-func pool currently hold. Each call takes a lock briefly; not
//! for hot paths.

use crate::{callback, pool, timer, tree, Context};

/// How many live cancelable contexts are hooked directly under the context
/// that decides when `ctx` is done (`ctx` itself if it is cancelable).
pub fn children(ctx: &Context) -> usize {
    ctx.node.signal().map_or(0, tree::child_count)
}

/// How many callbacks wait for `ctx`'s signal: `on_done` callbacks,
/// `after_func`s, and threads and tasks waiting for it to be done.
pub fn pending_callbacks(ctx: &Context) -> usize {
    ctx.node.signal().map_or(0, tree::callback_count)
}

/// How many deadlines the timer has armed, process-wide.
pub fn pending_deadlines() -> usize {
    timer::len()
}

/// How many threads the after-func pool has right now, process-wide
/// (workers, busy or idle, and the watcher that adds them).
pub fn after_func_threads() -> usize {
    pool::threads()
}

/// How many `after_func`s are registered and not yet started, process-wide:
/// waiting for their contexts, or queued for the after-func pool. One that
/// was stopped, or whose context can never be done and whose handle is
/// gone, is not counted.
pub fn pending_after_funcs() -> usize {
    callback::pending_after_funcs()
}
