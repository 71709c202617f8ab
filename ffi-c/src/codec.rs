//! The wire codecs from C: deadlines as `grpc-timeout` and millisecond
//! values, W3C `traceparent`, `tracestate` and baggage. Each call converts
//! its C strings, calls `polyctx::wire`, and converts the result; every rule
//! about what a header means is the core's.
//!
//! C strings are read as UTF-8 with invalid bytes replaced by U+FFFD, which
//! no header grammar allows: such a value is malformed (a timeout), invalid
//! (a `traceparent`), dropped whole (a `tracestate`) or dropped alone (a
//! baggage member), exactly as any other byte outside its grammar.

use std::borrow::Cow;
use std::ffi::{c_char, CStr};
use std::ptr::NonNull;

use polyctx::wire::{self, Baggage, BaggageEntry, Malformed, TraceContext};

use crate::handle::{self, ctx_baggage_t, ctx_tracestate_t};
use crate::status::{arg, boundary, ctx_status_t, put, text_buffer};

/// The sampled trace flag: the caller may have recorded its span.
pub const CTX_TRACE_FLAG_SAMPLED: u8 = 0x01;
/// Trace Context level 2's random trace flag: the trace id's right 7 bytes
/// are random.
pub const CTX_TRACE_FLAG_RANDOM: u8 = 0x02;
/// The length of a `traceparent` value polyctx writes (version 00), without
/// the NUL: `char buf[CTX_TRACEPARENT_LEN + 1]` always suffices.
pub const CTX_TRACEPARENT_LEN: usize = 55;
/// The longest timeout value polyctx writes (`ctx_grpc_timeout_format`,
/// `ctx_timeout_ms_format`), without the NUL: `char buf[CTX_TIMEOUT_MAX_LEN + 1]`
/// always suffices.
pub const CTX_TIMEOUT_MAX_LEN: usize = 10;

/// One hop of a distributed trace (W3C Trace Context), as plain bytes: the
/// trace it belongs to, the span that is the parent of the next hop's work,
/// and the trace flags (`CTX_TRACE_FLAG_*`; others are kept but never sent).
/// Neither id may be all zero: calls given such a one return
/// `CTX_EMALFORMED`. A value type: copy it freely.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ctx_trace_context_t {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// `CTX_TRACE_FLAG_SAMPLED`, `CTX_TRACE_FLAG_RANDOM`, or others received.
    pub flags: u8,
}

impl From<TraceContext> for ctx_trace_context_t {
    fn from(tc: TraceContext) -> Self {
        ctx_trace_context_t {
            trace_id: tc.trace_id,
            span_id: tc.span_id,
            flags: tc.flags,
        }
    }
}

/// The core's trace context for a C one, or `None` if an id is all zero.
pub(crate) fn trace_from_c(tc: &ctx_trace_context_t) -> Option<TraceContext> {
    let tc = TraceContext {
        trace_id: tc.trace_id,
        span_id: tc.span_id,
        flags: tc.flags,
    };
    tc.is_valid().then_some(tc)
}

// Strings in and out --------------------------------------------------------

/// A string C reads in place: the text and a NUL after it, so its pointer
/// is a C string and its length counts bytes (a baggage value decoded from
/// `%00` holds a NUL of its own).
pub(crate) struct NulStr(String);

impl NulStr {
    pub(crate) fn new(text: &str) -> NulStr {
        let mut s = String::with_capacity(text.len() + 1);
        s.push_str(text);
        s.push('\0');
        NulStr(s)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }

    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

/// A C string as text, invalid UTF-8 replaced.
///
/// # Safety
/// `p` must be a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn c_text<'a>(p: NonNull<c_char>) -> Cow<'a, str> {
    // SAFETY: as the caller promises.
    unsafe { CStr::from_ptr(p.as_ptr()) }.to_string_lossy()
}

/// The `n` items at `p`: `p` may be NULL only when `n` is 0. `CTX_ERANGE`
/// for a count no array can have.
///
/// # Safety
/// `p` must point to `n` readable items that outlive `'a`.
pub(crate) unsafe fn c_slice<'a, T>(p: *const T, n: usize) -> Result<&'a [T], ctx_status_t> {
    if n == 0 {
        return Ok(&[]);
    }
    let p = NonNull::new(p.cast_mut()).ok_or(ctx_status_t::CTX_EINVAL)?;
    if n > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(ctx_status_t::CTX_ERANGE);
    }
    // SAFETY: as the caller promises; the size fits in an isize.
    Ok(unsafe { std::slice::from_raw_parts(p.as_ptr(), n) })
}

/// The field values of one header, given as `n` C strings (none NULL).
///
/// # Safety
/// As [`c_slice`], and each string NUL-terminated.
unsafe fn c_values<'a>(values: *const *const c_char, n: usize) -> Result<Vec<Cow<'a, str>>, ctx_status_t> {
    // SAFETY: as the caller promises.
    let values = unsafe { c_slice(values, n) }?;
    values
        .iter()
        .map(|&v| {
            let v = NonNull::new(v.cast_mut()).ok_or(ctx_status_t::CTX_EINVAL)?;
            // SAFETY: as the caller promises.
            Ok(unsafe { c_text(v) })
        })
        .collect()
}

/// Writes a header value whole or not at all: `value` and a NUL if it fits
/// in `buf_len` bytes (`CTX_OK`), else the empty string (`CTX_ENOBUFS`);
/// `None` writes the empty string too (`CTX_EABSENT`). `*len` (unless NULL)
/// gets the value's length, 0 for `None`.
pub(crate) fn write_value(
    value: Option<&str>,
    buf: Option<NonNull<c_char>>,
    buf_len: usize,
    len: *mut usize,
) -> ctx_status_t {
    let text = value.unwrap_or("");
    let fits = text.len() < buf_len;
    if let Some(buf) = buf {
        let n = if fits { text.len() } else { 0 };
        // SAFETY: `buf` points to `buf_len` writable bytes (header contract)
        // and `n < buf_len`; the source is a separate Rust string.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.as_ptr().cast::<u8>(), n);
            buf.as_ptr().add(n).write(0);
        }
    }
    if let Some(len) = NonNull::new(len) {
        put(len, text.len());
    }
    match value {
        None => ctx_status_t::CTX_EABSENT,
        Some(_) if !fits => ctx_status_t::CTX_ENOBUFS,
        Some(_) => ctx_status_t::CTX_OK,
    }
}

/// Writes a borrowed C string to an optional out-parameter.
fn put_opt<T>(out: *mut T, value: T) {
    if let Some(out) = NonNull::new(out) {
        put(out, value);
    }
}

// Timeouts ------------------------------------------------------------------

fn parse_timeout(
    value: *const c_char,
    ns_out: *mut i64,
    parse: impl FnOnce(&str) -> Result<Option<u64>, Malformed>,
) -> ctx_status_t {
    let (value, ns_out) = (arg!(value), arg!(ns_out));
    // SAFETY: `value` is a C string (header contract), read during this call.
    match parse(&unsafe { c_text(value) }) {
        // The core saturates at INT64_MAX.
        Ok(Some(ns)) => {
            put(ns_out, i64::try_from(ns).unwrap_or(i64::MAX));
            ctx_status_t::CTX_OK
        }
        Ok(None) => ctx_status_t::CTX_EABSENT,
        Err(_) => ctx_status_t::CTX_EMALFORMED,
    }
}

/// Parses a `grpc-timeout` value (gRPC's PROTOCOL-HTTP2.md: 1 to 8 ASCII
/// digits and a unit, `H M S m u n`) into `*ns_out` nanoseconds. Strict:
/// spaces and tabs around it are trimmed; anything else off the grammar
/// (signs, inner spaces, a ninth digit, `1s`, two values joined by a comma)
/// is malformed. `0n` is a budget already spent (0); values saturate at
/// `INT64_MAX`.
///
/// Returns `CTX_OK`, `CTX_EABSENT` (empty or blank: no timeout was sent) or
/// `CTX_EMALFORMED`, writing `*ns_out` only on `CTX_OK`. Errors:
/// `CTX_EINVAL` if a pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_grpc_timeout_parse(value: *const c_char, ns_out: *mut i64) -> ctx_status_t {
    boundary(|| parse_timeout(value, ns_out, wire::parse_grpc_timeout))
}

/// Parses a `connect-timeout-ms` or `request-timeout-ms` value (1 to 10
/// ASCII digits of milliseconds) into `*ns_out` nanoseconds, with the rules
/// and results of `ctx_grpc_timeout_parse`.
#[no_mangle]
pub extern "C" fn ctx_timeout_ms_parse(value: *const c_char, ns_out: *mut i64) -> ctx_status_t {
    boundary(|| {
        parse_timeout(value, ns_out, |v| {
            wire::parse_timeout_ms(wire::header::REQUEST_TIMEOUT_MS, v)
        })
    })
}

/// Formats a remaining budget of `remaining_ns` nanoseconds as a
/// `grpc-timeout` value: the finest unit whose count, rounded up, fits in 8
/// digits (a budget is never sent shorter than it is), capped at 2,147,483
/// seconds (what a grpc-js server can represent).
///
/// Writes the value whole or not at all: with its NUL into `buf` if it fits
/// in `buf_len` bytes, and its length into `*len` (unless `len` is NULL), so
/// a first call with `buf_len` 0 gives the size to allocate; at most
/// `CTX_TIMEOUT_MAX_LEN` bytes. `buf` may be NULL only when `buf_len` is 0.
///
/// Returns `CTX_OK`; `CTX_EABSENT` when `remaining_ns <= 0` (nothing to
/// send: the call should fail locally); `CTX_ENOBUFS` if it does not fit
/// (`buf` then holds "", `*len` the length needed). Errors: `CTX_EINVAL` if
/// `buf` is NULL with `buf_len > 0`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_grpc_timeout_format(
    remaining_ns: i64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let buf = text_buffer!(buf, buf_len);
        write_value(wire::format_grpc_timeout(remaining_ns).as_deref(), buf, buf_len, len)
    })
}

/// Formats a remaining budget as a `connect-timeout-ms` or
/// `request-timeout-ms` value: whole milliseconds, rounded up (so anything
/// under a millisecond is "1"), capped as `ctx_grpc_timeout_format` caps.
/// Writes and returns as `ctx_grpc_timeout_format` does.
#[no_mangle]
pub extern "C" fn ctx_timeout_ms_format(
    remaining_ns: i64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let buf = text_buffer!(buf, buf_len);
        write_value(wire::format_timeout_ms(remaining_ns).as_deref(), buf, buf_len, len)
    })
}

// traceparent ---------------------------------------------------------------

/// Parses the `traceparent` field values received (`n_values` C strings,
/// in order; `values` may be NULL when `n_values` is 0) into `*out`.
///
/// Returns `CTX_OK`, or `CTX_EABSENT` (writing nothing) when there is no
/// usable one: absent, empty, invalid (uppercase hex, version ff, an
/// all-zero id, version 00 with extra fields...), or several differing
/// values. W3C treats all of these alike: start a new trace, ignore
/// `tracestate`. Errors: `CTX_EINVAL` if `out` or one of the strings is
/// NULL; `CTX_ERANGE` for an impossible `n_values`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_traceparent_parse(
    values: *const *const c_char,
    n_values: usize,
    out: *mut ctx_trace_context_t,
) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        // SAFETY: `values` holds `n_values` C strings (header contract).
        let values = match unsafe { c_values(values, n_values) } {
            Ok(v) => v,
            Err(status) => return status,
        };
        match wire::parse_traceparent(&values) {
            Some(tc) => {
                put(out, tc.into());
                ctx_status_t::CTX_OK
            }
            None => ctx_status_t::CTX_EABSENT,
        }
    })
}

/// Formats `*tc` as a `traceparent` value: version 00, lowercase hex, the
/// flags masked to the two version 00 defines; always `CTX_TRACEPARENT_LEN`
/// bytes. Writes and returns as `ctx_grpc_timeout_format` does (never
/// `CTX_EABSENT`). Errors: `CTX_EMALFORMED` (writing nothing) if an id is
/// all zero; `CTX_EINVAL` if `tc` is NULL, or `buf` is NULL with
/// `buf_len > 0`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_traceparent_format(
    tc: *const ctx_trace_context_t,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let tc = arg!(tc);
        let buf = text_buffer!(buf, buf_len);
        // SAFETY: `tc` points to a trace context (header contract).
        let Some(tc) = trace_from_c(unsafe { tc.as_ref() }) else {
            return ctx_status_t::CTX_EMALFORMED;
        };
        write_value(Some(&tc.to_header()), buf, buf_len, len)
    })
}

/// Starts a new trace: random ids (from the kernel, so a forked child never
/// repeats its parent's), flags sampled and random. Errors: `CTX_EINVAL`
/// if `out` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_trace_context_new_root(out: *mut ctx_trace_context_t) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        put(out, TraceContext::new_root().into());
        ctx_status_t::CTX_OK
    })
}

/// The next hop of `*tc`'s trace: the same trace id and flags, a new random
/// span id. `out` may equal `tc`. Errors: `CTX_EMALFORMED` if an id of `*tc`
/// is all zero; `CTX_EINVAL` if a pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_trace_context_child(
    tc: *const ctx_trace_context_t,
    out: *mut ctx_trace_context_t,
) -> ctx_status_t {
    boundary(|| {
        let (tc, out) = (arg!(tc), arg!(out));
        // SAFETY: `tc` points to a trace context (header contract); it is
        // copied out before `out`, which may be the same, is written.
        let Some(tc) = trace_from_c(unsafe { tc.as_ref() }) else {
            return ctx_status_t::CTX_EMALFORMED;
        };
        put(out, tc.child().into());
        ctx_status_t::CTX_OK
    })
}

// tracestate ----------------------------------------------------------------

/// What a `ctx_tracestate_t` owns: the members, readable in place from C.
pub(crate) struct Tracestate(Vec<(NulStr, NulStr)>);

impl Tracestate {
    pub(crate) fn new(members: &[(String, String)]) -> Tracestate {
        Tracestate(members.iter().map(|(k, v)| (NulStr::new(k), NulStr::new(v))).collect())
    }

    fn to_core(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
            .collect()
    }
}

/// Parses the `tracestate` field values (combined in order; `values` may be
/// NULL when `n_values` is 0) into a new list at `*out`: empty when the
/// header is absent or blank.
///
/// Returns `CTX_OK`, or `CTX_EMALFORMED` (writing nothing) when the header
/// must be dropped whole, as W3C requires: more than 32 members, any
/// invalid member, a repeated key, or longer than polyctx reads. Only use a
/// `tracestate` that came with a valid `traceparent`. Errors: `CTX_EINVAL`
/// if `out` or one of the strings is NULL; `CTX_ERANGE` for an impossible
/// `n_values`. On `CTX_OK`, release `*out` with `ctx_tracestate_release`.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_tracestate_parse(
    values: *const *const c_char,
    n_values: usize,
    out: *mut *mut ctx_tracestate_t,
) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        // SAFETY: `values` holds `n_values` C strings (header contract).
        let values = match unsafe { c_values(values, n_values) } {
            Ok(v) => v,
            Err(status) => return status,
        };
        match wire::parse_tracestate(&values) {
            Some(members) => {
                put(out, handle::box_into_raw(Tracestate::new(&members)));
                ctx_status_t::CTX_OK
            }
            None => ctx_status_t::CTX_EMALFORMED,
        }
    })
}

/// The number of members; 0 if `ts` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_tracestate_len(ts: *const ctx_tracestate_t) -> usize {
    boundary(|| {
        let ts = arg!(ts);
        // SAFETY: the caller owns `ts`.
        unsafe { handle::box_borrow(ts) }.0.len()
    })
}

/// Member `index` (0 first): its key into `*key` and value into `*value`,
/// NUL-terminated strings borrowed from `ts` (valid until it is released);
/// either out-pointer may be NULL. Errors: `CTX_ERANGE` if `index` is not
/// below `ctx_tracestate_len(ts)`; `CTX_EINVAL` if `ts` is NULL.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_tracestate_get(
    ts: *const ctx_tracestate_t,
    index: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
) -> ctx_status_t {
    boundary(|| {
        let ts = arg!(ts);
        // SAFETY: the caller owns `ts`.
        let Some((k, v)) = unsafe { handle::box_borrow(ts) }.0.get(index) else {
            return ctx_status_t::CTX_ERANGE;
        };
        put_opt(key, k.as_ptr());
        put_opt(value, v.as_ptr());
        ctx_status_t::CTX_OK
    })
}

/// Formats `ts` as a `tracestate` value, members in order. Writes and
/// returns as `ctx_grpc_timeout_format` does: `CTX_EABSENT` when it has no
/// members (send no `tracestate`). Errors: `CTX_EINVAL` if `ts` is NULL, or
/// `buf` is NULL with `buf_len > 0`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_tracestate_format(
    ts: *const ctx_tracestate_t,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let ts = arg!(ts);
        let buf = text_buffer!(buf, buf_len);
        // SAFETY: the caller owns `ts`.
        let members = unsafe { handle::box_borrow(ts) }.to_core();
        write_value(wire::format_tracestate(&members).as_deref(), buf, buf_len, len)
    })
}

/// Frees `ts` and its strings. NULL is ignored; releasing twice is
/// undefined behaviour. Threads: any, once no other thread uses `ts`.
#[no_mangle]
pub extern "C" fn ctx_tracestate_release(ts: *mut ctx_tracestate_t) {
    boundary(|| {
        let ts = arg!(ts);
        // SAFETY: the caller gives up the list it owns.
        drop(unsafe { handle::box_from_raw(ts) });
    })
}

// Baggage -------------------------------------------------------------------

/// What a `ctx_baggage_t` owns: the core's baggage, readable in place from C.
pub(crate) struct BaggageList(Vec<Member>);

struct Member {
    key: NulStr,
    value: NulStr,
    properties: Vec<(NulStr, Option<NulStr>)>,
}

impl Member {
    fn new(key: &str, entry: &BaggageEntry) -> Member {
        Member {
            key: NulStr::new(key),
            value: NulStr::new(&entry.value),
            properties: entry
                .properties
                .iter()
                .map(|(k, v)| (NulStr::new(k), v.as_deref().map(NulStr::new)))
                .collect(),
        }
    }
}

impl BaggageList {
    pub(crate) fn new(baggage: &Baggage) -> BaggageList {
        BaggageList(baggage.iter().map(|(k, e)| Member::new(k, e)).collect())
    }

    pub(crate) fn to_core(&self) -> Baggage {
        self.0
            .iter()
            .map(|m| {
                let entry = BaggageEntry {
                    value: m.value.as_str().to_owned(),
                    properties: m
                        .properties
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.as_ref().map(|v| v.as_str().to_owned())))
                        .collect(),
                };
                (m.key.as_str().to_owned(), entry)
            })
            .collect()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|m| m.key.as_str() == key)
    }
}

/// Reads a member's value into optional out-parameters.
fn put_value(s: &NulStr, value: *mut *const c_char, value_len: *mut usize) {
    put_opt(value, s.as_ptr());
    put_opt(value_len, s.as_str().len());
}

/// A new, empty baggage list at `*out`, to fill with `ctx_baggage_set` and
/// send with `ctx_wire_with_baggage` or `ctx_baggage_format`. Release it with
/// `ctx_baggage_release`. Errors: `CTX_EINVAL` if `out` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_baggage_new(out: *mut *mut ctx_baggage_t) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        put(out, handle::box_into_raw(BaggageList(Vec::new())));
        ctx_status_t::CTX_OK
    })
}

/// Parses the `baggage` field values (combined in order; `values` may be
/// NULL when `n_values` is 0) into a new list at `*out`. Never fails on
/// content: a header over 8,192 bytes is dropped whole (an empty list),
/// members past the 64th are dropped, an invalid member is dropped alone, a
/// repeated key keeps its last value in its first place, values are
/// percent-decoded (bytes that are not UTF-8 become U+FFFD; `%00` gives a
/// NUL, hence the lengths `ctx_baggage_get` reports).
///
/// Errors: `CTX_EINVAL` if `out` or one of the strings is NULL; `CTX_ERANGE`
/// for an impossible `n_values`. On `CTX_OK`, release `*out` with
/// `ctx_baggage_release`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_baggage_parse(
    values: *const *const c_char,
    n_values: usize,
    out: *mut *mut ctx_baggage_t,
) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        // SAFETY: `values` holds `n_values` C strings (header contract).
        let values = match unsafe { c_values(values, n_values) } {
            Ok(v) => v,
            Err(status) => return status,
        };
        put(
            out,
            handle::box_into_raw(BaggageList::new(&wire::parse_baggage(&values))),
        );
        ctx_status_t::CTX_OK
    })
}

/// The number of members; 0 if `b` is NULL. Threads: as `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_len(b: *const ctx_baggage_t) -> usize {
    boundary(|| {
        let b = arg!(b);
        // SAFETY: the caller owns `b`.
        unsafe { handle::box_borrow(b) }.0.len()
    })
}

/// Member `index` (0 first): `*key`, `*value` (NUL-terminated, borrowed
/// from `b` until it is changed or released), `*value_len` (the value's
/// bytes, which may include a NUL from `%00`) and `*n_properties`. Any
/// out-pointer may be NULL. Errors: `CTX_ERANGE` if `index` is not below
/// `ctx_baggage_len(b)`; `CTX_EINVAL` if `b` is NULL. Threads: as
/// `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_get(
    b: *const ctx_baggage_t,
    index: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
    value_len: *mut usize,
    n_properties: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let b = arg!(b);
        // SAFETY: the caller owns `b`.
        let Some(m) = unsafe { handle::box_borrow(b) }.0.get(index) else {
            return ctx_status_t::CTX_ERANGE;
        };
        put_opt(key, m.key.as_ptr());
        put_value(&m.value, value, value_len);
        put_opt(n_properties, m.properties.len());
        ctx_status_t::CTX_OK
    })
}

/// Property `prop` of member `index` (`;key` or `;key=value`): `*key`, and
/// `*value` and `*value_len`, or NULL and 0 for a property without a value;
/// borrowed as in `ctx_baggage_get`; any out-pointer may be NULL. Errors:
/// `CTX_ERANGE` if either index is out of range; `CTX_EINVAL` if `b` is
/// NULL. Threads: as `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_property(
    b: *const ctx_baggage_t,
    index: usize,
    prop: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let b = arg!(b);
        // SAFETY: the caller owns `b`.
        let found = unsafe { handle::box_borrow(b) }
            .0
            .get(index)
            .and_then(|m| m.properties.get(prop));
        let Some((k, v)) = found else {
            return ctx_status_t::CTX_ERANGE;
        };
        put_opt(key, k.as_ptr());
        match v {
            Some(v) => put_value(v, value, value_len),
            None => {
                put_opt(value, std::ptr::null());
                put_opt(value_len, 0);
            }
        }
        ctx_status_t::CTX_OK
    })
}

/// The value of the member `key` (compared exactly: baggage keys are case
/// sensitive) into `*value` and `*value_len`, borrowed as in
/// `ctx_baggage_get`; either may be NULL. Returns `CTX_OK` or
/// `CTX_ENOTFOUND`. Errors: `CTX_EINVAL` if `b` or `key` is NULL.
/// Threads: as `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_find(
    b: *const ctx_baggage_t,
    key: *const c_char,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let (b, key) = (arg!(b), arg!(key));
        // SAFETY: the caller owns `b`; `key` is a C string.
        let (b, key) = unsafe { (handle::box_borrow(b), c_text(key)) };
        match b.position(&key) {
            Some(i) => {
                put_value(&b.0[i].value, value, value_len);
                ctx_status_t::CTX_OK
            }
            None => ctx_status_t::CTX_ENOTFOUND,
        }
    })
}

/// Sets the member `key` to `value` (both copied; `value` is any text, sent
/// percent-encoded), without properties: in its place if `b` has it, else
/// last. Invalidates strings borrowed from `b`. Limits apply when sending:
/// members past the 64th or the 8,192nd byte are left out then.
///
/// Errors: `CTX_EMALFORMED` (changing nothing) if `key` is not an HTTP token
/// (letters, digits and ``!#$%&'*+-.^_`|~``, at least one); `CTX_EINVAL` if
/// a pointer is NULL. Threads: as `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_set(b: *mut ctx_baggage_t, key: *const c_char, value: *const c_char) -> ctx_status_t {
    boundary(|| {
        let (b, key, value) = (arg!(b), arg!(key), arg!(value));
        // SAFETY: the caller owns `b` and nobody else uses it meanwhile
        // (header contract); `key` and `value` are C strings.
        let (b, key, value) = unsafe { (handle::box_borrow_mut(b), c_text(key), c_text(value)) };
        if !wire::is_token(&key) {
            return ctx_status_t::CTX_EMALFORMED;
        }
        let member = Member::new(&key, &BaggageEntry::new(value));
        match b.position(&key) {
            Some(i) => b.0[i] = member,
            None => b.0.push(member),
        }
        ctx_status_t::CTX_OK
    })
}

/// Adds a property to the member `key`: `;prop_key=prop_value`, or
/// `;prop_key` when `prop_value` is NULL (both copied). Invalidates strings
/// borrowed from `b`. Returns `CTX_OK` or `CTX_ENOTFOUND` (no member `key`).
/// Errors: `CTX_EMALFORMED` if `prop_key` is not an HTTP token; `CTX_EINVAL`
/// if `b`, `key` or `prop_key` is NULL. Threads: as `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_add_property(
    b: *mut ctx_baggage_t,
    key: *const c_char,
    prop_key: *const c_char,
    prop_value: *const c_char,
) -> ctx_status_t {
    boundary(|| {
        let (b, key, prop_key) = (arg!(b), arg!(key), arg!(prop_key));
        // SAFETY: as for `ctx_baggage_set`; `prop_value` is NULL or a C string.
        let (b, key, prop_key, prop_value) = unsafe {
            (
                handle::box_borrow_mut(b),
                c_text(key),
                c_text(prop_key),
                NonNull::new(prop_value.cast_mut()).map(|v| c_text(v)),
            )
        };
        if !wire::is_token(&prop_key) {
            return ctx_status_t::CTX_EMALFORMED;
        }
        let Some(i) = b.position(&key) else {
            return ctx_status_t::CTX_ENOTFOUND;
        };
        b.0[i]
            .properties
            .push((NulStr::new(&prop_key), prop_value.as_deref().map(NulStr::new)));
        ctx_status_t::CTX_OK
    })
}

/// Removes the member `key`. Invalidates strings borrowed from `b`. Returns
/// `CTX_OK` or `CTX_ENOTFOUND`. Errors: `CTX_EINVAL` if a pointer is NULL.
/// Threads: as `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_remove(b: *mut ctx_baggage_t, key: *const c_char) -> ctx_status_t {
    boundary(|| {
        let (b, key) = (arg!(b), arg!(key));
        // SAFETY: as for `ctx_baggage_set`.
        let (b, key) = unsafe { (handle::box_borrow_mut(b), c_text(key)) };
        match b.position(&key) {
            Some(i) => {
                b.0.remove(i);
                ctx_status_t::CTX_OK
            }
            None => ctx_status_t::CTX_ENOTFOUND,
        }
    })
}

/// Formats `b` as a `baggage` value: values percent-encoded, at most 64
/// members and 8,192 bytes (members that would go past either are left
/// out). Writes and returns as `ctx_grpc_timeout_format` does:
/// `CTX_EABSENT` when there is nothing to send. Errors: `CTX_EINVAL` if `b`
/// is NULL, or `buf` is NULL with `buf_len > 0`. Threads: as
/// `ctx_baggage_t` says.
#[no_mangle]
pub extern "C" fn ctx_baggage_format(
    b: *const ctx_baggage_t,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let b = arg!(b);
        let buf = text_buffer!(buf, buf_len);
        // SAFETY: the caller owns `b`.
        let baggage = unsafe { handle::box_borrow(b) }.to_core();
        match wire::format_baggage(baggage.iter().map(|(k, e)| (k.as_str(), e))) {
            Ok(text) => write_value(text.as_deref(), buf, buf_len, len),
            // Keys were checked when set; parsed ones are tokens.
            Err(_) => ctx_status_t::CTX_EMALFORMED,
        }
    })
}

/// Frees `b` and its strings. NULL is ignored; releasing twice is undefined
/// behaviour. Threads: any, once no other thread uses `b`.
#[no_mangle]
pub extern "C" fn ctx_baggage_release(b: *mut ctx_baggage_t) {
    boundary(|| {
        let b = arg!(b);
        // SAFETY: the caller gives up the list it owns.
        drop(unsafe { handle::box_from_raw(b) });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_the_cores() {
        assert_eq!(CTX_TRACE_FLAG_SAMPLED, wire::FLAG_SAMPLED);
        assert_eq!(CTX_TRACE_FLAG_RANDOM, wire::FLAG_RANDOM);
        assert_eq!(TraceContext::new_root().to_header().len(), CTX_TRACEPARENT_LEN);
        let longest = [wire::format_grpc_timeout(i64::MAX), wire::format_timeout_ms(i64::MAX)];
        assert_eq!(
            longest.iter().flatten().map(String::len).max(),
            Some(CTX_TIMEOUT_MAX_LEN)
        );
    }

    #[test]
    fn nul_strings_read_in_place() {
        let s = NulStr::new("a\0b");
        assert_eq!(s.as_str(), "a\0b");
        // SAFETY: a NulStr ends in a NUL.
        assert_eq!(unsafe { CStr::from_ptr(s.as_ptr()) }.to_bytes(), b"a");
    }
}
