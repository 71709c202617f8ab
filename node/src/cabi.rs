//! Sharing contexts with C in the same process.
//!
//! This addon links polyctx's C ABI crate, so it exports `ctx_*` (the
//! functions of `include/ctx.h`): C code in the process uses the same core
//! as JS. Handles cross through that crate's `handle` module, called here
//! as Rust: a `ctx_t *` is the core's raw context handle, carried in JS as
//! a BigInt address. Keys are C's keys (`ctx_key_t`), so one key finds
//! values stored from either side (see `held`).

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;

use ctx::handle::{self, ctx_cancel_t, ctx_t};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::handle::{entry, key, Entry};

fn address(p: *mut impl Sized) -> BigInt {
    BigInt::from(p.expose_provenance() as u64)
}

fn pointer<T>(what: &str, value: &BigInt) -> Result<NonNull<T>> {
    let (negative, addr, lossless) = value.get_u64();
    let addr = usize::try_from(addr).ok().filter(|_| !negative && lossless);
    addr.and_then(|a| NonNull::new(std::ptr::with_exposed_provenance_mut(a)))
        .ok_or_else(|| Error::new(Status::InvalidArg, format!("a {what} must be a non-zero address")))
}

/// A new `ctx_t *` owning one reference to `h`'s context, for C to release.
#[napi]
pub fn to_c(h: f64) -> BigInt {
    address(handle::ctx_into_raw(entry(h).ctx.clone()))
}

/// A new handle on the context behind a live `ctx_t *` (and on the cancel
/// function behind a live `ctx_cancel_t *`, if given), holding references
/// of its own: the caller still owns, and releases, the ones it passed.
#[napi]
pub fn from_c(ctx: BigInt, cancel: Option<BigInt>) -> Result<f64> {
    let ctx = pointer::<ctx_t>("ctx_t*", &ctx)?;
    let cancel = cancel
        .map(|c| pointer::<ctx_cancel_t>("ctx_cancel_t*", &c))
        .transpose()?;
    // SAFETY: the caller promises live handles (the JS API documents it);
    // each is only borrowed, and a reference of our own retained.
    let (ctx, cancel) = unsafe {
        (
            handle::ctx_borrow(ctx).retain(),
            cancel.map(|c| handle::cancel_borrow(c).retain()),
        )
    };
    Ok(Entry::into_handle(ctx, cancel, f64::NAN))
}

/// Whether `h`'s cancel function records a cause (made by a `*_cause` function).
#[napi]
pub fn cancel_takes_cause(h: f64) -> bool {
    entry(h).cancel.as_ref().is_some_and(|c| c.takes_cause())
}

/// A new `ctx_key_t *` for the key behind `k` (the same key), for C to
/// release with `ctx_key_release`.
#[napi]
pub fn key_to_c(k: f64) -> BigInt {
    address(handle::key_into_raw(key(k).clone()))
}

/// The path of this addon, whose `ctx_*` symbols are made global to the
/// process, so that C libraries loaded later with those symbols undefined
/// bind to this core (as with Python's `c_library()`).
#[napi]
pub fn c_library() -> Result<String> {
    // SAFETY: `Dl_info` is plain C data (pointers and integers), for which
    // all zeroes is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = c_library as *const c_void;
    // SAFETY: `here` is an address in this library; `info` is writable.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return Err(Error::from_reason("polyctx: cannot find the path of the native module"));
    }
    // SAFETY: dladdr gave a NUL-terminated path that lives as long as the library.
    let path = unsafe { CStr::from_ptr(info.dli_fname) };
    // SAFETY: `path` is a library already loaded (RTLD_NOLOAD loads
    // nothing); the handle is kept for ever, so the library never unloads.
    let global = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_GLOBAL) };
    if global.is_null() {
        return Err(Error::from_reason(format!(
            "polyctx: cannot make the C ABI of {} global",
            path.to_string_lossy()
        )));
    }
    Ok(path.to_string_lossy().into_owned())
}
