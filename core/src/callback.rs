//! Running code when a context is done: the low-level on-done callbacks that
//! bindings use to hop onto their event loops, and Go's `AfterFunc` on top.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::node::{Node, NodeRef, LIVE};
use crate::Context;

type Callback = Box<dyn FnOnce() + Send>;

/// One registered callback. Listed in its node's callback list while pending;
/// whoever takes `f` first (the cancel walk, or `stop`) decides its fate.
pub(crate) struct Slot {
    f: Mutex<Option<Callback>>,
    /// Position in the node's callback list; guarded by the node's lock and
    /// meaningful only while the node is live (a done node's list was taken).
    index: AtomicUsize,
    /// The node whose cancellation runs `f`. A pending callback keeps it
    /// alive, so that an ancestor's cancellation still reaches it after every
    /// other handle is dropped.
    node: Option<NodeRef>,
}

impl Slot {
    fn f(&self) -> MutexGuard<'_, Option<Callback>> {
        // Held only to move `f` in or out, never while it runs.
        self.f.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn run(&self) {
        let f = self.f().take();
        if let Some(f) = f {
            f();
        }
    }
}

/// A callback registered with [`Context::on_done`]. Dropping it does not
/// unregister the callback; [`stop`](Registration::stop) does.
pub struct Registration {
    slot: Arc<Slot>,
}

impl Registration {
    /// Unregisters the callback. Returns true if this kept it from running;
    /// false if it has already been started, or was already stopped.
    pub fn stop(&self) -> bool {
        let f = self.slot.f().take();
        if let Some(node) = &self.slot.node {
            unlist(node, &self.slot);
        }
        // The callback's captures are dropped here, with no lock held.
        f.is_some()
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("pending", &self.slot.f().is_some())
            .finish()
    }
}

fn unlist(node: &Node, slot: &Arc<Slot>) {
    let c = node.cancel_part();
    let mut g = c.lock();
    if c.state.load(Ordering::Relaxed) != LIVE {
        return; // the cancel walk took the whole list
    }
    let Some(list) = g.guarded().callbacks.as_mut() else {
        return;
    };
    let i = slot.index.load(Ordering::Relaxed);
    if list.get(i).is_some_and(|s| Arc::ptr_eq(s, slot)) {
        list.swap_remove(i);
        if let Some(moved) = list.get(i) {
            moved.index.store(i, Ordering::Relaxed);
        }
    }
}

/// Registers `f` to run once when `ctx` is done. See [`Context::on_done`].
pub(crate) fn register(ctx: &Context, f: Callback) -> Registration {
    let Some(signal) = ctx.signal_ref() else {
        // Never done: keep `f` only so that `stop` reports, as Go's does,
        // that it kept `f` from running.
        return Registration {
            slot: Arc::new(Slot {
                f: Mutex::new(Some(f)),
                index: AtomicUsize::new(0),
                node: None,
            }),
        };
    };
    let slot = Arc::new(Slot {
        f: Mutex::new(Some(f)),
        index: AtomicUsize::new(0),
        node: Some(signal.clone()),
    });
    let c = signal.cancel_part();
    let mut g = c.lock();
    if c.state.load(Ordering::Relaxed) == LIVE {
        let list = g.guarded().callbacks.get_or_insert_with(Default::default);
        slot.index.store(list.len(), Ordering::Relaxed);
        list.push(slot.clone());
        return Registration { slot };
    }
    drop(g);
    slot.run();
    Registration { slot }
}

/// The handle returned by [`after_func`](crate::after_func).
#[derive(Debug)]
pub struct AfterFunc(Registration);

impl AfterFunc {
    /// Stops the association of the context with `f` (Go's `stop`). Returns
    /// true if this kept `f` from being started; false if `f` has already been
    /// started on its own thread, or was already stopped. Does not wait for a
    /// running `f` to finish.
    pub fn stop(&self) -> bool {
        self.0.stop()
    }
}

/// Arranges to call `f` on its own thread after `ctx` is done; if it already
/// is, `f` starts at once (Go's `AfterFunc`). Each call is independent.
///
/// A pending `after_func` keeps `ctx` alive until it is done or the function
/// is stopped.
pub fn after_func<F: FnOnce() + Send + 'static>(ctx: &Context, f: F) -> AfterFunc {
    AfterFunc(register(ctx, Box::new(move || spawn(f))))
}

fn spawn<F: FnOnce() + Send + 'static>(f: F) {
    // If no thread can be started, run `f` here rather than lose it.
    let cell = Arc::new(Mutex::new(Some(f)));
    let theirs = cell.clone();
    let started = std::thread::Builder::new()
        .name("polyctx-after-func".into())
        .spawn(move || {
            let f = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(f) = f {
                f();
            }
        });
    if started.is_err() {
        let f = cell.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(f) = f {
            f();
        }
    }
}
