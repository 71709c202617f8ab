//! What the C ABI adds to the core: each operation through `ctx_*` beside
//! the same operation on the core, interleaved in one process (the
//! difference between two processes' medians is noisier than the few
//! nanoseconds measured). The `ctx_*` functions are called through function
//! pointers, as C calls `libctx.so` through its PLT, so that nothing is
//! inlined across the boundary that a C caller could not inline.

use std::hint::black_box;
use std::ptr::{self, NonNull};

use ctx::abi::{self, ctx_err_t, ctx_status_t, ctx_value_kind_t};
use ctx::handle::{ctx_cancel_t, ctx_key_t, ctx_t};
use polyctx::{with_cancel, with_timeout, ForeignValue, Key};

use crate::harness::{time, Bench, Case};

const AREA: &str = "c";
const HOUR_NS: i64 = 3_600_000_000_000;

/// `f`, as a pointer the optimiser cannot see through.
fn opaque<F: Copy>(f: F) -> F {
    black_box(f)
}

type Derive = extern "C" fn(*const ctx_t, *mut *mut ctx_t, *mut *mut ctx_cancel_t) -> ctx_status_t;
type DeriveTimeout = extern "C" fn(*const ctx_t, i64, *mut *mut ctx_t, *mut *mut ctx_cancel_t) -> ctx_status_t;
type Cancel = extern "C" fn(*mut ctx_cancel_t) -> ctx_status_t;
type CancelRelease = extern "C" fn(*mut ctx_cancel_t);
type Release = extern "C" fn(*mut ctx_t);
type IsDone = extern "C" fn(*const ctx_t) -> bool;
type Err = extern "C" fn(*const ctx_t) -> ctx_err_t;
type Lookup = extern "C" fn(
    *const ctx_t,
    *const ctx_key_t,
    *mut *const std::ffi::c_void,
    *mut usize,
    *mut ctx_value_kind_t,
) -> ctx_status_t;

struct Abi {
    with_cancel: Derive,
    with_timeout: DeriveTimeout,
    cancel: Cancel,
    cancel_release: CancelRelease,
    release: Release,
    is_done: IsDone,
    err: Err,
    value: Lookup,
}

impl Abi {
    fn new() -> Abi {
        Abi {
            with_cancel: opaque(abi::ctx_with_cancel as Derive),
            with_timeout: opaque(abi::ctx_with_timeout as DeriveTimeout),
            cancel: opaque(abi::ctx_cancel as Cancel),
            cancel_release: opaque(abi::ctx_cancel_release as CancelRelease),
            release: opaque(abi::ctx_release as Release),
            is_done: opaque(abi::ctx_is_done as IsDone),
            err: opaque(abi::ctx_err as Err),
            value: opaque(abi::ctx_value as Lookup),
        }
    }

    /// A C program's `defer cancel()` pattern: cancel, then release both.
    fn finish(&self, c: *mut ctx_t, k: *mut ctx_cancel_t) {
        (self.cancel)(k);
        (self.cancel_release)(k);
        (self.release)(c);
    }
}

fn case<'a>(name: &'a str, f: impl FnMut(u64) -> std::time::Duration + 'a) -> Case<'a> {
    (name, Box::new(f))
}

pub fn overhead(bench: &Bench) {
    let c = Abi::new();
    let (mut parent, mut keep) = (ptr::null_mut(), ptr::null_mut());
    (c.with_cancel)(abi::ctx_background(), &mut parent, &mut keep);
    // SAFETY: `parent` is a live handle this function owns until the end.
    let rust_parent = unsafe { ctx::handle::ctx_borrow(NonNull::new(parent).unwrap()) }.retain();

    bench.compare(
        AREA,
        "derive+cancel",
        vec![
            case("polyctx", |n| {
                time(n, || {
                    let (mut ch, mut k) = (ptr::null_mut(), ptr::null_mut());
                    (c.with_cancel)(parent, &mut ch, &mut k);
                    c.finish(black_box(ch), k);
                })
            }),
            case("rust core", |n| {
                time(n, || {
                    let (ch, cancel) = with_cancel(&rust_parent);
                    cancel.cancel();
                    black_box(ch);
                })
            }),
        ],
    );
    bench.compare(
        AREA,
        "derive+cancel with deadline",
        vec![
            case("polyctx", |n| {
                time(n, || {
                    let (mut ch, mut k) = (ptr::null_mut(), ptr::null_mut());
                    (c.with_timeout)(parent, HOUR_NS, &mut ch, &mut k);
                    c.finish(black_box(ch), k);
                })
            }),
            case("rust core", |n| {
                time(n, || {
                    let (ch, cancel) = with_timeout(&rust_parent, std::time::Duration::from_nanos(HOUR_NS as u64));
                    cancel.cancel();
                    black_box(ch);
                })
            }),
        ],
    );
    let (mut live, mut keep_live) = (ptr::null_mut(), ptr::null_mut());
    (c.with_cancel)(parent, &mut live, &mut keep_live);
    // SAFETY: `live` is owned until the end of this function.
    let rust_live = unsafe { ctx::handle::ctx_borrow(NonNull::new(live).unwrap()) }.retain();
    bench.compare(
        AREA,
        "is_done",
        vec![
            case("polyctx", |n| {
                time(n, || {
                    black_box((c.is_done)(black_box(live)));
                })
            }),
            case("rust core", |n| {
                time(n, || {
                    black_box(black_box(&rust_live).is_done());
                })
            }),
        ],
    );
    bench.compare(
        AREA,
        "err",
        vec![
            case("polyctx", |n| {
                time(n, || {
                    black_box((c.err)(black_box(live)));
                })
            }),
            case("rust core", |n| {
                time(n, || {
                    black_box(black_box(&rust_live).err());
                })
            }),
        ],
    );
    for depth in [10, 100] {
        let (key, leaf, rust_key) = value_chain(depth);
        // SAFETY: `leaf` is owned until the end of this iteration.
        let rust_leaf = unsafe { ctx::handle::ctx_borrow(NonNull::new(leaf).unwrap()) }.retain();
        bench.compare(
            AREA,
            &format!("value lookup depth {depth}"),
            vec![
                case("polyctx", |n| {
                    time(n, || {
                        let mut data = ptr::null();
                        let s = (c.value)(black_box(leaf), key, &mut data, ptr::null_mut(), ptr::null_mut());
                        black_box((s, data));
                    })
                }),
                case("rust core", |n| {
                    time(n, || {
                        black_box(black_box(&rust_leaf).value(rust_key));
                    })
                }),
            ],
        );
        (c.release)(leaf);
        abi::ctx_key_release(key);
    }
    c.finish(live, keep_live);
    c.finish(parent, keep);
}

/// A chain of `depth` value contexts with the wanted key at the top, as C
/// makes it (bytes under a C key), and the same chain's Rust view.
fn value_chain(depth: usize) -> (*mut ctx_key_t, *mut ctx_t, &'static Key<ForeignValue>) {
    let mut key = ptr::null_mut();
    abi::ctx_key_new(c"wanted".as_ptr(), &mut key);
    let mut leaf = ptr::null_mut();
    abi::ctx_with_value_bytes(abi::ctx_background(), key, c"1".as_ptr().cast(), 1, &mut leaf);
    for _ in 1..depth {
        let mut other = ptr::null_mut();
        abi::ctx_key_new(c"other".as_ptr(), &mut other);
        let mut next = ptr::null_mut();
        abi::ctx_with_value_bytes(leaf, other, c"x".as_ptr().cast(), 1, &mut next);
        abi::ctx_release(leaf);
        abi::ctx_key_release(other); // the chain keeps what it needs
        leaf = next;
    }
    // SAFETY: `key` is a live key handle, released by the caller after its
    // last use of this borrow (the 'static is the caller's to honour).
    let rust_key = unsafe { ctx::handle::key_borrow(NonNull::new(key).unwrap()) };
    (key, leaf, rust_key)
}
