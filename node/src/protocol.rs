//! The numbers the native module and the JS layer (`node/index.js`) pass
//! each other besides handles and held ids, named once: the JS layer reads
//! them from the module when it loads.

use napi_derive::napi;

/// Returned by a `with*` call that made no context because its duration
/// was out of range; `duration_error` then says why. Never a handle.
#[napi]
pub const NO_HANDLE: u32 = 0;

/// `err` of a live context.
#[napi]
pub const ERR_NONE: u32 = 0;
/// `err` of a canceled context.
#[napi]
pub const ERR_CANCELED: u32 = 1;
/// `err` of a context whose deadline passed.
#[napi]
pub const ERR_DEADLINE_EXCEEDED: u32 = 2;

/// `drain` writes events of this many numbers: `[id, code, cause]`.
#[napi]
pub const EVENT_SIZE: u32 = 3;
/// The `code` of an event for a held id that no context uses any more.
/// Otherwise `code` is the `err` of the context a watch saw done.
#[napi]
pub const EVENT_RELEASE: u32 = ERR_NONE;

/// The cause of a done context that was given none: its cause is its error
/// (Go's `Cause(ctx) == ctx.Err()`). Other causes are held ids (> 0) or texts.
#[napi]
pub const CAUSE_IS_ERR: i32 = -1;
/// A cause that is one of the core's end reasons (`wire::END_REASONS`) is
/// `CAUSE_REASON - i`, `i` its index in that table; so is a context error
/// given as the cause of a context whose own error is the other one
/// (Go's `cancel(DeadlineExceeded)`).
#[napi]
pub const CAUSE_REASON: i32 = -2;
/// In events, a cause given as text (in another language or JS
/// environment) is `CAUSE_TEXT - k`, `k` its index for `cause_text`.
#[napi]
pub const CAUSE_TEXT: i32 = -16;

/// `backoff_next`: give up, `max_attempts` attempts failed.
#[napi]
pub const GIVE_UP_ATTEMPTS: i32 = -1;
/// `backoff_next`: give up, the deadline passed or what is left of it cannot fit another attempt.
#[napi]
pub const GIVE_UP_DEADLINE: i32 = -2;
/// `backoff_next`: give up, the context was canceled.
#[napi]
pub const GIVE_UP_CANCELED: i32 = -3;
