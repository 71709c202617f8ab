//! JS values the core holds on the JS layer's behalf: request values and
//! causes. The core stores only an id into the JS layer's table; dropping
//! the last copy — on whatever thread the core drops it — queues the id for
//! release on the JS thread that owns the table (see `events`).

use std::sync::Arc;

use crate::events::{self, Item, Shared};

/// A slot in the JS layer's table of held values.
struct Held {
    id: f64,
    owner: Arc<Shared>,
}

impl Held {
    fn new(id: f64) -> Held {
        Held {
            id,
            owner: events::current(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        events::push(&self.owner, Item::Release(self.id));
    }
}

/// A value stored with `withValue`.
pub(crate) struct JsValue(Held);

impl JsValue {
    pub(crate) fn new(id: f64) -> JsValue {
        JsValue(Held::new(id))
    }

    /// The id in the owning table; 0 if that table belongs to another JS
    /// environment (a worker), where the value cannot be reached.
    pub(crate) fn id(&self) -> f64 {
        if events::is_current(&self.0.owner) {
            self.0.id
        } else {
            0.0
        }
    }
}

/// A cause given from JS: the payload of a core cause
/// (`Cause::with_payload`) whose message is the text other languages see.
pub(crate) struct JsCause(Held);

impl JsCause {
    pub(crate) fn new(id: f64) -> JsCause {
        JsCause(Held::new(id))
    }

    /// The id in this thread's table, if the cause was given on this thread.
    pub(crate) fn local_id(&self) -> Option<f64> {
        events::is_current(&self.0.owner).then_some(self.0.id)
    }
}
