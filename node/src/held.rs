//! JS values the core holds on the JS layer's behalf: request values and
//! causes. The core stores only an id into the JS layer's table; dropping
//! the last copy — on whatever thread the core drops it — queues the id for
//! release on the JS thread that owns the table (see `events`).
//!
//! Request values are the core's foreign values, the value type of C's keys
//! (`ctx_key_t`), so that one key finds values stored from JS and from C
//! (see `cabi`): a well-formed JS string is stored as its UTF-8 bytes, which
//! C reads as a string; any other JS value as a pointer to its [`Held`]
//! slot, marked as Node's, which C can only hand back.

use std::ffi::c_void;
use std::sync::Arc;

use napi::bindgen_prelude::{BigInt, Either4, Uint8Array};
use polyctx::{ForeignBytes, ForeignPtr, ForeignValue, Owner};

use crate::events::{self, Item, Shared};

/// Marks the values this addon stores, so it finds its own slots again.
static NODE: Owner = Owner { name: "node" };

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

    /// The id, if this thread's environment owns the table it is in.
    fn local_id(&self) -> Option<f64> {
        events::is_current(&self.owner).then_some(self.id)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        events::push(&self.owner, Item::Release(self.id));
    }
}

/// The finalizer of a held value: runs on whatever thread drops the last
/// context holding it, and only queues the id (`Held::drop`).
unsafe extern "C" fn release_value(p: *mut c_void) {
    // SAFETY: `p` is the box `value_of_id` made, handed over for this one call.
    drop(unsafe { Box::from_raw(p.cast::<Held>()) });
}

/// A request value for the held id `id`.
pub(crate) fn value_of_id(id: f64) -> ForeignValue {
    let held = Box::into_raw(Box::new(Held::new(id)));
    // SAFETY: `release_value` frees the box once, from any thread (`Held` is
    // `Send + Sync`: an id and an `Arc` of thread-safe state).
    ForeignValue::Pointer(unsafe { ForeignPtr::owned(held.cast(), Some(release_value), &NODE) })
}

/// A request value for a string: its UTF-8 bytes.
pub(crate) fn value_of_text(text: &str) -> ForeignValue {
    ForeignValue::Bytes(ForeignBytes::new(text.as_bytes()))
}

/// A request value as the JS layer reads it: a held id (0 if the value was
/// stored in another JS environment, where it cannot be reached), a string
/// for UTF-8 bytes, a `Uint8Array` for other bytes stored by C, or the
/// address of a pointer stored by C.
pub(crate) type JsRead = Either4<f64, String, Uint8Array, BigInt>;

pub(crate) fn read(value: &ForeignValue) -> JsRead {
    match value {
        ForeignValue::Pointer(p) if p.is_owned_by(&NODE) => {
            // SAFETY: a pointer marked as Node's is a live `Held` box: the
            // value, which the caller's context keeps, owns it.
            let held = unsafe { &*p.as_ptr().cast::<Held>() };
            Either4::A(held.local_id().unwrap_or(0.0))
        }
        ForeignValue::Pointer(p) => Either4::D(BigInt::from(p.as_ptr().expose_provenance() as u64)),
        ForeignValue::Bytes(b) => match std::str::from_utf8(b.as_bytes()) {
            Ok(text) => Either4::B(text.to_owned()),
            Err(_) => Either4::C(Uint8Array::from(b.as_bytes().to_vec())),
        },
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
        self.0.local_id()
    }
}
