//! Introspection for tests and metrics: what a context tree and the timer
//! currently hold. Each call takes a lock briefly; not for hot paths.

use crate::node::LIVE;
use crate::{timer, Context};

/// How many live cancelable contexts are hooked directly under the context
/// that decides when `ctx` is done (`ctx` itself if it is cancelable).
pub fn children(ctx: &Context) -> usize {
    let Some(signal) = ctx.node.signal() else { return 0 };
    let c = signal.cancel_part();
    let mut g = c.lock();
    let mut count = 0;
    let mut next = g.guarded().children;
    while let Some(child) = next {
        count += 1;
        // SAFETY: `child` is in the list guarded by the held lock.
        next = unsafe { g.links_of(child.as_ref()) }.next;
    }
    count
}

/// How many callbacks (including `after_func`s) wait for `ctx`'s signal.
pub fn pending_callbacks(ctx: &Context) -> usize {
    let Some(signal) = ctx.node.signal() else { return 0 };
    let c = signal.cancel_part();
    let mut g = c.lock();
    if c.state.load(std::sync::atomic::Ordering::Relaxed) != LIVE {
        return 0;
    }
    g.guarded().callbacks.as_ref().map_or(0, |list| list.len())
}

/// How many deadlines the timer has armed, process-wide.
pub fn pending_deadlines() -> usize {
    timer::len()
}
