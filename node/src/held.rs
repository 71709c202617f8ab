//! JS values the core holds on the JS layer's behalf: request values and
//! causes. The core stores only an id into the JS layer's table; dropping
//! the last copy — on whatever thread the core drops it — queues the id for
//! release on the JS thread that owns the table (see `events`).

use std::fmt;
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

/// A cause given from JS: any JS value, and the text other languages see.
pub(crate) struct JsCause {
    held: Held,
    text: String,
}

impl JsCause {
    pub(crate) fn new(id: f64, text: String) -> JsCause {
        JsCause {
            held: Held::new(id),
            text,
        }
    }

    /// The id in this thread's table, if the cause was given on this thread.
    pub(crate) fn local_id(&self) -> Option<f64> {
        events::is_current(&self.held.owner).then_some(self.held.id)
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for JsCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for JsCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsCause({:?})", self.text)
    }
}

impl std::error::Error for JsCause {}
