//! Handles as JS numbers, and every conversion between them and Rust values.
//! No other module casts a handle.
//!
//! A handle is the address of a `Box`: below 2^53 on every 64-bit platform
//! Node runs on, so a double carries it exactly. The JS layer keeps handles
//! in private class fields, passes them only to this module, and frees each
//! exactly once from a `FinalizationRegistry`, after which no JS code can
//! reach it.

use std::cell::Cell;

use polyctx::{CancelCauseFunc, CancelFunc, Context, Key};

use crate::held::JsValue;

/// What one JS `Context` wrapper owns.
pub(crate) struct Entry {
    pub(crate) ctx: Context,
    pub(crate) cancel: Cancel,
    /// The id of the watch behind the wrapper's `signal`, 0 if none.
    pub(crate) watch: Cell<f64>,
}

/// The cancel function of the context, if it has one. It lives with the
/// context's wrapper: the JS cancel function holds the wrapper.
pub(crate) enum Cancel {
    None,
    Plain(CancelFunc),
    Cause(CancelCauseFunc),
}

impl Entry {
    pub(crate) fn into_handle(ctx: Context, cancel: Cancel) -> f64 {
        crate::events::external(ENTRY_BYTES);
        into_number(Box::into_raw(Box::new(Entry {
            ctx,
            cancel,
            watch: Cell::new(0.0),
        })))
    }

    pub(crate) fn plain(ctx: Context) -> f64 {
        Entry::into_handle(ctx, Cancel::None)
    }

    /// # Safety
    /// `h` must be a live handle from [`Entry::into_handle`]; it is dead afterwards.
    pub(crate) unsafe fn from_raw(h: f64) -> Box<Entry> {
        crate::events::external(-ENTRY_BYTES);
        // SAFETY: as the caller promises.
        unsafe { Box::from_raw(from_number::<Entry>(h)) }
    }
}

/// What a wrapper keeps alive natively, roughly: its entry and the core's
/// node (two allocations).
const ENTRY_BYTES: i64 = (std::mem::size_of::<Entry>() + 112) as i64;

/// The entry behind a live handle.
pub(crate) fn entry(h: f64) -> &'static Entry {
    // SAFETY: the JS layer passes only live handles (module docs), and a
    // handle is freed only once its wrapper is unreachable, so no call that
    // borrows it can still be running.
    unsafe { &*from_number::<Entry>(h) }
}

pub(crate) fn key_into_raw(key: Key<JsValue>) -> f64 {
    into_number(Box::into_raw(Box::new(key)))
}

/// The key behind a live key handle.
pub(crate) fn key(k: f64) -> &'static Key<JsValue> {
    // SAFETY: as for `entry`.
    unsafe { &*from_number::<Key<JsValue>>(k) }
}

/// # Safety
/// `k` must be a live key handle; it is dead afterwards.
pub(crate) unsafe fn key_from_raw(k: f64) -> Box<Key<JsValue>> {
    // SAFETY: as the caller promises.
    unsafe { Box::from_raw(from_number::<Key<JsValue>>(k)) }
}

fn into_number<T>(p: *mut T) -> f64 {
    let addr = p as usize;
    debug_assert!(addr < (1 << 53), "a handle must fit a double exactly");
    addr as f64
}

fn from_number<T>(h: f64) -> *mut T {
    debug_assert!(h > 0.0 && h.fract() == 0.0, "not a handle: {h}");
    h as usize as *mut T
}
