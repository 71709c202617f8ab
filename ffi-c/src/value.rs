//! Request-scoped values from C: copied bytes, or a pointer with its
//! destructor.

use std::ffi::{c_char, c_void, CStr};
use std::ptr::NonNull;

use polyctx::{ForeignBytes, ForeignPtr, ForeignValue, Key};

use crate::handle::{self, ctx_key_t, ctx_t};
use crate::status::{arg, boundary, ctx_status_t, put};

/// What `ctx_value` found: which of the two ways the value was stored.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ctx_value_kind_t {
    /// Bytes copied by `ctx_with_value_bytes` (possibly none).
    CTX_VALUE_BYTES = 1,
    /// A pointer stored by `ctx_with_value` (possibly NULL), or by another
    /// language through the same key (Python stores its objects' `PyObject *`).
    CTX_VALUE_POINTER = 2,
}

/// Makes a new key, distinct from every other key whatever its name. `name`
/// (copied; invalid UTF-8 becomes U+FFFD) is only for display.
///
/// On `CTX_OK`, `*out` owns the key; release it with `ctx_key_release`.
/// Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_key_new(name: *const c_char, out: *mut *mut ctx_key_t) -> ctx_status_t {
    boundary(|| {
        let (name, out) = (arg!(name), arg!(out));
        // SAFETY: `name` is a NUL-terminated string (header contract).
        let name = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
        put(out, handle::key_into_raw(Key::new(name)));
        ctx_status_t::CTX_OK
    })
}

/// Releases a key. Values stored under it stay in their contexts (and are
/// destroyed with them) but can no longer be looked up. NULL is ignored.
/// No other thread may be using the key. Releasing twice is undefined
/// behaviour.
#[no_mangle]
pub extern "C" fn ctx_key_release(key: *mut ctx_key_t) {
    boundary(|| {
        let key = arg!(key);
        // SAFETY: the caller gives up the key it owns.
        drop(unsafe { handle::key_from_raw(key) });
    })
}

/// Derives a child of `parent` carrying a copy of the `len` bytes at `data`
/// under `key` (Go's `WithValue`), shadowing any value an ancestor stored
/// under the same key. Use values for request-scoped data that crosses API
/// boundaries (trace ids, auth principals), not for optional parameters.
///
/// `data` may be NULL only when `len` is 0. The copy is freed with the
/// context. On `CTX_OK`, `*out` owns one reference.
///
/// Errors: `CTX_EINVAL` if a required pointer is NULL; `CTX_ERANGE` if `len`
/// exceeds `PTRDIFF_MAX`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_with_value_bytes(
    parent: *const ctx_t,
    key: *const ctx_key_t,
    data: *const c_void,
    len: usize,
    out: *mut *mut ctx_t,
) -> ctx_status_t {
    boundary(|| {
        let (parent, key, out) = (arg!(parent), arg!(key), arg!(out));
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            let data = arg!(data);
            if isize::try_from(len).is_err() {
                return ctx_status_t::CTX_ERANGE;
            }
            // SAFETY: `data` points to `len` readable bytes (header contract),
            // read only during this call.
            unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), len) }
        };
        let value = ForeignValue::Bytes(ForeignBytes::new(bytes));
        // SAFETY: the caller owns `parent` and `key`.
        let (parent, key) = unsafe { (handle::ctx_borrow(parent), handle::key_borrow(key)) };
        put(
            out,
            crate::debug::new_c_context(polyctx::with_value(&parent, key, value)),
        );
        ctx_status_t::CTX_OK
    })
}

/// Derives a child of `parent` carrying the pointer `ptr` under `key` (Go's
/// `WithValue` with a pointer). polyctx never dereferences `ptr`; it may be
/// NULL.
///
/// On `CTX_OK` the value is the context's: `dtor` (if not NULL) is called
/// with `ptr` exactly once, when the last context holding the value is
/// freed, which is when the last reference to it or to any context derived
/// from it is gone. It runs on the thread that drops that reference: usually
/// one calling `ctx_release`, but it can be any thread inside a ctx_ call
/// that gives up a reference (releasing or closing a handle, cancelling), or
/// polyctx's timer thread after a deadline. `dtor` should be quick and must
/// not block; it may call ctx_ functions. On any other status nothing was
/// stored and `dtor` is not called: `ptr` is still yours.
///
/// Whatever `ptr` points to must be safe to read from several threads at
/// once, as any thread holding the context may look it up.
///
/// On `CTX_OK`, `*out` owns one reference. Errors: `CTX_EINVAL` if `parent`,
/// `key` or `out` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_with_value(
    parent: *const ctx_t,
    key: *const ctx_key_t,
    ptr: *mut c_void,
    dtor: Option<unsafe extern "C" fn(*mut c_void)>,
    out: *mut *mut ctx_t,
) -> ctx_status_t {
    boundary(|| {
        let (parent, key, out) = (arg!(parent), arg!(key), arg!(out));
        // SAFETY: the caller owns `parent` and `key`.
        let (parent, key) = unsafe { (handle::ctx_borrow(parent), handle::key_borrow(key)) };
        // SAFETY: the header's contract for `ptr` and `dtor` is `new`'s:
        // `dtor(ptr)` may run once on any thread, and `ptr` is shareable.
        let value = ForeignValue::Pointer(unsafe { ForeignPtr::new(ptr, dtor) });
        put(
            out,
            crate::debug::new_c_context(polyctx::with_value(&parent, key, value)),
        );
        ctx_status_t::CTX_OK
    })
}

/// Looks up the value stored under `key` by `ctx` or its nearest ancestor
/// that has one (Go's `Value`). Walks up the tree; never blocks.
///
/// On `CTX_OK`, `*data` is borrowed from the context, valid while you hold a
/// reference to `ctx`, and `*kind` (unless `kind` is NULL) says which it is:
/// - `CTX_VALUE_BYTES`: a pointer to the copy, followed by a NUL that `*len`
///   does not count (so a stored string is a C string); never NULL, even
///   for an empty value.
/// - `CTX_VALUE_POINTER`: the pointer itself (maybe NULL), `*len` set to 0.
///   A value Python stored under the key (a `polyctx.Key` is a `ctx_key_t *`)
///   reads as its `PyObject *`, borrowed from the context.
///
/// `len` may be NULL. Returns `CTX_ENOTFOUND` (writing nothing) if no value
/// is stored under `key`.
///
/// Errors: `CTX_EINVAL` if `ctx`, `key` or `data` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_value(
    ctx: *const ctx_t,
    key: *const ctx_key_t,
    data: *mut *const c_void,
    len: *mut usize,
    kind: *mut ctx_value_kind_t,
) -> ctx_status_t {
    boundary(|| {
        let (ctx, key, data) = (arg!(ctx), arg!(key), arg!(data));
        // SAFETY: the caller owns `ctx` and `key`.
        let (ctx, key) = unsafe { (handle::ctx_borrow(ctx), handle::key_borrow(key)) };
        let Some(value) = ctx.value(key) else {
            return ctx_status_t::CTX_ENOTFOUND;
        };
        let (ptr, n, k) = match value {
            ForeignValue::Bytes(b) => (b.as_ptr().cast::<c_void>(), b.len(), ctx_value_kind_t::CTX_VALUE_BYTES),
            ForeignValue::Pointer(p) => (p.as_ptr().cast_const(), 0, ctx_value_kind_t::CTX_VALUE_POINTER),
        };
        put(data, ptr);
        if let Some(len) = NonNull::new(len) {
            put(len, n);
        }
        if let Some(kind) = NonNull::new(kind) {
            put(kind, k);
        }
        ctx_status_t::CTX_OK
    })
}
