//! What every call returns, and the two checks every call makes: the panic
//! boundary and the NULL check.

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// The result of a fallible call. `CTX_OK` is 0; every other value is an
/// error whose number is never reused for another meaning. Out-parameters are
/// written only when a call returns `CTX_OK`. `ctx_strerror` describes each.
///
/// Status codes are below 100 and context errors (`ctx_err_t`) 100 and up,
/// so one can never be mistaken for the other: `ctx_strerror` describes
/// both, and `ctx_err_string` describes a `ctx_err_t` in Go's words.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ctx_status_t {
    /// Success. For `ctx_wait` and `ctx_wait_until`: the context is done.
    CTX_OK = 0,
    /// A required pointer argument is NULL, or an argument is malformed.
    CTX_EINVAL = 1,
    /// The handle is of the wrong kind: `ctx_cancel_cause` on a cancel handle
    /// that cannot record a cause (from `ctx_with_cancel`, `ctx_with_timeout`
    /// or `ctx_with_deadline`, as Go's `CancelFunc` takes no cause).
    CTX_EKIND = 2,
    /// `ctx_wait`, `ctx_wait_until`: the time ran out before the context was done.
    CTX_ETIMEDOUT = 3,
    /// A size is too large to be represented (`ctx_with_value_bytes`, the
    /// counts of the wire functions), or an index is past the end of a list
    /// (`ctx_tracestate_get`, `ctx_baggage_get`).
    CTX_ERANGE = 4,
    /// A bug in polyctx panicked inside the call. The panic was stopped at the
    /// boundary (never unwinding into C) and reported on stderr; contexts
    /// stay usable.
    CTX_EPANIC = 5,
    /// A system call failed (`ctx_done_fd`: no file descriptor could be
    /// created); `errno` says why.
    CTX_ESYS = 6,
    /// `ctx_value`: no value is stored under the key in the context or its
    /// ancestors. Likewise `ctx_wire_trace_context` and `ctx_wire_trace_link`
    /// (the context carries none) and the `ctx_baggage_*` lookups (no such key).
    CTX_ENOTFOUND = 7,
    /// `ctx_deadline`: the context has no deadline.
    CTX_ENODEADLINE = 8,
    /// `ctx_cause`, `ctx_end_reason`: the context is not done, so it has no
    /// cause yet.
    CTX_ENOTDONE = 9,
    /// A header value (or a part of one given to a `ctx_baggage_*` or
    /// `ctx_wire_policy_*` setter) breaks its grammar: a malformed timeout
    /// (for `ctx_wire_extract*`, of the protocol's own timeout header, which
    /// the call names), a `tracestate` that must be dropped whole, a baggage
    /// key that is not an HTTP token, a trace context with an all-zero id.
    CTX_EMALFORMED = 10,
    /// The buffer is too small for the value, which is never truncated: the
    /// buffer holds the empty string (if `buf_len > 0`) and `*len` the
    /// value's length, so a buffer of `*len + 1` bytes will do.
    CTX_ENOBUFS = 11,
    /// Nothing there: a parsed header is absent or empty (an invalid or
    /// conflicting `traceparent` counts as absent, as W3C says), or a format
    /// call has nothing to send (no time left, no members). Leave the header
    /// out.
    CTX_EABSENT = 12,
    /// The context is canceled. `ctx_wire_inject*`: the call would fail
    /// anyway, and nothing was written: fail the call locally. `ctx_sleep`,
    /// `ctx_backoff_next`, `ctx_retry`: the wait or the retries stopped
    /// (`ctx_cause` says why).
    CTX_ECANCELED = 13,
    /// The context has no time left. `ctx_wire_inject*`: its deadline has
    /// passed (even if the timer has not fired yet) and nothing was written:
    /// fail the call locally with a deadline error. `ctx_sleep`: the
    /// deadline ended the sleep. `ctx_backoff_next`, `ctx_retry`: the
    /// deadline passed, or what is left of it cannot fit another attempt.
    CTX_EDEADLINE = 14,
    /// `ctx_backoff_next`, `ctx_retry`: `max_attempts` attempts failed.
    CTX_EATTEMPTS = 15,
    /// `ctx_group_run`: a task failed (returned non-zero); `ctx_retry`: an
    /// attempt failed in a way not worth retrying.
    CTX_ETASK = 16,
}

/// Why a context is done, as returned by `ctx_err`. Zero while it is not,
/// so `if (ctx_err(ctx))` reads "if done". The other values start at 100,
/// apart from every `ctx_status_t`. (Early builds numbered them 1, 2 and 3,
/// which were status codes too: rebuild code compiled against such a ctx.h.)
/// `ctx_err_string` gives Go's text for each.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ctx_err_t {
    /// The context is not done.
    CTX_ERR_NONE = 0,
    /// Canceled: by its cancel handle or an ancestor's (Go's `context.Canceled`).
    CTX_ERR_CANCELED = 100,
    /// Its deadline, or an ancestor's, passed (Go's `context.DeadlineExceeded`).
    CTX_ERR_DEADLINE_EXCEEDED = 101,
    /// `ctx_err` was given NULL (or panicked). Not zero, so code that tests
    /// `ctx_err(ctx) != CTX_ERR_NONE` stops its work rather than run on.
    CTX_ERR_INVALID = 102,
}

impl From<Option<polyctx::Error>> for ctx_err_t {
    fn from(err: Option<polyctx::Error>) -> Self {
        match err {
            None => ctx_err_t::CTX_ERR_NONE,
            Some(polyctx::Error::Canceled) => ctx_err_t::CTX_ERR_CANCELED,
            Some(polyctx::Error::DeadlineExceeded) => ctx_err_t::CTX_ERR_DEADLINE_EXCEEDED,
        }
    }
}

const STATUSES: [ctx_status_t; 17] = {
    use ctx_status_t::*;
    [
        CTX_OK,
        CTX_EINVAL,
        CTX_EKIND,
        CTX_ETIMEDOUT,
        CTX_ERANGE,
        CTX_EPANIC,
        CTX_ESYS,
        CTX_ENOTFOUND,
        CTX_ENODEADLINE,
        CTX_ENOTDONE,
        CTX_EMALFORMED,
        CTX_ENOBUFS,
        CTX_EABSENT,
        CTX_ECANCELED,
        CTX_EDEADLINE,
        CTX_EATTEMPTS,
        CTX_ETASK,
    ]
};

const ERRORS: [ctx_err_t; 4] = {
    use ctx_err_t::*;
    [
        CTX_ERR_NONE,
        CTX_ERR_CANCELED,
        CTX_ERR_DEADLINE_EXCEEDED,
        CTX_ERR_INVALID,
    ]
};

fn describe_status(status: c_int) -> Option<&'static CStr> {
    use ctx_status_t::*;
    let known = STATUSES.into_iter().find(|s| *s as c_int == status)?;
    Some(match known {
        CTX_OK => c"success",
        CTX_EINVAL => c"invalid argument (NULL pointer or malformed value)",
        CTX_EKIND => c"wrong kind of handle for this call",
        CTX_ETIMEDOUT => c"timed out before the context was done",
        CTX_ERANGE => c"size out of range",
        CTX_EPANIC => c"internal error: polyctx panicked (reported on stderr)",
        CTX_ESYS => c"system call failed (see errno)",
        CTX_ENOTFOUND => c"no value for this key",
        CTX_ENODEADLINE => c"the context has no deadline",
        CTX_ENOTDONE => c"the context is not done",
        CTX_EMALFORMED => c"malformed header value",
        CTX_ENOBUFS => c"buffer too small (nothing truncated; the length needed was reported)",
        CTX_EABSENT => c"no value (header absent or empty, or nothing to send)",
        CTX_ECANCELED => c"the context is canceled (nothing was sent, or the wait or retries stopped)",
        CTX_EDEADLINE => c"no time left before the deadline (nothing was sent, or no further attempt fits)",
        CTX_EATTEMPTS => c"gave up: out of attempts",
        CTX_ETASK => c"a task failed, or an attempt failed in a way not worth retrying",
    })
}

/// Go's `Error()` text for the two errors a context can have.
fn describe_err(err: c_int) -> Option<&'static CStr> {
    use ctx_err_t::*;
    let known = ERRORS.into_iter().find(|e| *e as c_int == err)?;
    Some(match known {
        CTX_ERR_NONE => c"the context is not done",
        CTX_ERR_CANCELED => c"context canceled",
        CTX_ERR_DEADLINE_EXCEEDED => c"context deadline exceeded",
        CTX_ERR_INVALID => c"invalid context (NULL)",
    })
}

/// How a C-facing return type reports the two failures every call can have.
pub(crate) trait FfiReturn {
    /// Returned when a required pointer argument is NULL.
    fn invalid() -> Self;
    /// Returned when the call panicked.
    fn panicked() -> Self;
}

impl FfiReturn for ctx_status_t {
    fn invalid() -> Self {
        ctx_status_t::CTX_EINVAL
    }
    fn panicked() -> Self {
        ctx_status_t::CTX_EPANIC
    }
}

impl FfiReturn for ctx_err_t {
    fn invalid() -> Self {
        ctx_err_t::CTX_ERR_INVALID
    }
    fn panicked() -> Self {
        ctx_err_t::CTX_ERR_INVALID
    }
}

/// `ctx_is_done`: an unusable argument reads as done, so loops stop.
impl FfiReturn for bool {
    fn invalid() -> Self {
        true
    }
    fn panicked() -> Self {
        true
    }
}

impl FfiReturn for () {
    fn invalid() -> Self {}
    fn panicked() -> Self {}
}

impl<T> FfiReturn for *mut T {
    fn invalid() -> Self {
        std::ptr::null_mut()
    }
    fn panicked() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> FfiReturn for *const T {
    fn invalid() -> Self {
        std::ptr::null()
    }
    fn panicked() -> Self {
        std::ptr::null()
    }
}

/// `ctx_fd_get`: not a descriptor.
impl FfiReturn for std::ffi::c_int {
    fn invalid() -> Self {
        -1
    }
    fn panicked() -> Self {
        -1
    }
}

/// `ctx_tracestate_len`, `ctx_baggage_len`: a NULL list is empty.
impl FfiReturn for usize {
    fn invalid() -> Self {
        0
    }
    fn panicked() -> Self {
        0
    }
}

/// `ctx_lost_cancels`, which cannot fail: a count, 0 if it did.
impl FfiReturn for u64 {
    fn invalid() -> Self {
        0
    }
    fn panicked() -> Self {
        0
    }
}

/// `ctx_now_ns`, which cannot fail: -1 is never a time.
impl FfiReturn for i64 {
    fn invalid() -> Self {
        -1
    }
    fn panicked() -> Self {
        -1
    }
}

/// The panic boundary: every `extern "C"` body runs inside it. A panic is
/// caught here (the default hook has already printed it) and turned into the
/// return type's panic value, so it never unwinds into C.
///
/// `AssertUnwindSafe` is sound here because the core keeps no lock across
/// user code and leaves contexts consistent after a panic (see its `node`
/// module), and the bodies hold no other state across the boundary.
#[inline(always)]
pub(crate) fn boundary<R: FfiReturn>(body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| R::panicked())
}

/// The NULL check: `let p = arg!(ptr);` gives a `NonNull` (or, for a
/// function pointer, the function), or returns the calling function's
/// invalid-argument value. Used inside [`boundary`] bodies.
macro_rules! arg {
    ($ptr:expr) => {
        match $crate::status::Required::required($ptr) {
            Some(p) => p,
            None => return $crate::status::FfiReturn::invalid(),
        }
    };
}
pub(crate) use arg;

/// The output buffer of a call that writes text: `None` when `buf_len` is
/// 0, else `buf`, which must then not be NULL (returns the calling
/// function's invalid-argument value if it is).
macro_rules! text_buffer {
    ($buf:expr, $buf_len:expr) => {
        if $buf_len > 0 {
            Some($crate::status::arg!($buf))
        } else {
            None
        }
    };
}
pub(crate) use text_buffer;

/// A pointer argument that may be NULL in C: `*const T`, `*mut T`, or a
/// nullable function pointer (`Option<fn>`).
pub(crate) trait Required {
    type Checked;
    fn required(self) -> Option<Self::Checked>;
}

impl<T> Required for *const T {
    type Checked = NonNull<T>;
    fn required(self) -> Option<NonNull<T>> {
        NonNull::new(self.cast_mut())
    }
}

impl<T> Required for *mut T {
    type Checked = NonNull<T>;
    fn required(self) -> Option<NonNull<T>> {
        NonNull::new(self)
    }
}

impl<F> Required for Option<F> {
    type Checked = F;
    fn required(self) -> Option<F> {
        self
    }
}

/// Writes an out-parameter (already NULL-checked).
pub(crate) fn put<T>(out: NonNull<T>, value: T) {
    // SAFETY: every out-parameter is documented as pointing to writable
    // storage for one `T`, and `arg!` has checked it is not NULL.
    unsafe { out.as_ptr().write(value) }
}

/// A static, NUL-terminated description of a `ctx_status_t`, for messages;
/// "unknown ctx status" for a number that is not one. Given a `ctx_err_t`
/// (a number of its own, 100 or more), it describes that as
/// `ctx_err_string` does, so `ctx_strerror(ctx_err(c))` is not misleading;
/// but 0 reads as "success" either way. Never NULL; never free it.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_strerror(status: c_int) -> *const c_char {
    boundary(|| {
        let text = describe_status(status).or_else(|| describe_err(status).filter(|_| status != 0));
        text.unwrap_or(c"unknown ctx status").as_ptr()
    })
}

/// Go's text for a `ctx_err_t` (its `Error()`): "context canceled" or
/// "context deadline exceeded"; "the context is not done" for
/// `CTX_ERR_NONE`, "invalid context (NULL)" for `CTX_ERR_INVALID`, and
/// "unknown ctx error" for a number that is none of them (a status code,
/// say). A static string: never NULL, never free it. `err` is an `int` so
/// that any number is safe to pass. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_err_string(err: c_int) -> *const c_char {
    boundary(|| describe_err(err).unwrap_or(c"unknown ctx error").as_ptr())
}

/// The library's version, "MAJOR.MINOR.PATCH": a static string, never NULL.
/// The major version is the one in the soname (`libctx.so.MAJOR`).
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_version() -> *const c_char {
    const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the version has no NUL inside"),
    };
    boundary(|| VERSION.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_statuses() {
        let s: ctx_status_t = boundary(|| panic!("boom"));
        assert_eq!(s, ctx_status_t::CTX_EPANIC);
        let e: ctx_err_t = boundary(|| panic!("boom"));
        assert_eq!(e, ctx_err_t::CTX_ERR_INVALID);
        let p: *mut u8 = boundary(|| panic!("boom"));
        assert!(p.is_null());
    }

    fn text(p: *const c_char) -> &'static str {
        // SAFETY: both functions return static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn every_code_has_its_own_text_and_the_spaces_are_apart() {
        let statuses: Vec<c_int> = STATUSES.iter().map(|s| *s as c_int).collect();
        let errors: Vec<c_int> = ERRORS.iter().map(|e| *e as c_int).collect();
        assert!(statuses.iter().all(|s| (0..100).contains(s)));
        assert!(errors[1..].iter().all(|e| *e >= 100), "only CTX_ERR_NONE is 0");
        let texts: Vec<_> = statuses
            .iter()
            .chain(&errors[1..])
            .map(|&n| text(ctx_strerror(n)))
            .collect();
        for (i, t) in texts.iter().enumerate() {
            assert!(!texts[..i].contains(t) && *t != "unknown ctx status", "{t:?}");
        }
        assert_eq!(
            text(ctx_strerror(ctx_err_t::CTX_ERR_CANCELED as c_int)),
            "context canceled"
        );
        assert_eq!(
            text(ctx_err_string(ctx_err_t::CTX_ERR_DEADLINE_EXCEEDED as c_int)),
            "context deadline exceeded"
        );
        assert_eq!(
            text(ctx_err_string(ctx_status_t::CTX_EINVAL as c_int)),
            "unknown ctx error"
        );
        for n in [-1, 17, 99, 103] {
            assert_eq!(text(ctx_strerror(n)), "unknown ctx status");
        }
    }
}
