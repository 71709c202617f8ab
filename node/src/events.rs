//! How the core's events reach JS: done contexts (to abort signals and run
//! after-funcs) and held values to release.
//!
//! Each JS environment (the main thread, each worker) has a [`Shared`]
//! record and one JS `dispatch` function. Core callbacks and drops run on
//! whatever thread cancels or drops (the JS thread itself, the core's timer
//! thread, C code); they only push an [`Item`]:
//! - on the environment's own JS thread, into a thread-local list that the
//!   native call in progress delivers before it returns to JS, so that
//!   `cancel()` has aborted every signal when it returns;
//! - on any other thread, into the shared queue, poking one thread-safe
//!   function when the queue goes from empty to non-empty. The poke runs
//!   `flush` on the JS thread, which delivers the whole batch with one call.
//!
//! The thread-safe function is unref'd, so it never keeps the process alive
//! (pending deadlines do not, as with `AbortSignal.timeout`). No JS value is
//! touched off the JS thread: items are numbers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use napi::bindgen_prelude::*;
use napi::sys;
use polyctx::{Context, Error as CtxError, Registration};

use crate::held::JsCause;

#[derive(Clone, Copy)]
pub(crate) enum Item {
    /// The watch with this id saw its context done.
    Done(f64),
    /// The held value with this id is no longer used by any context.
    Release(f64),
}

/// One JS environment, as the threads that cancel and drop see it.
pub(crate) struct Shared {
    env_id: u64,
    has_remote: AtomicBool,
    remote: Mutex<Remote>,
}

struct Remote {
    items: Vec<Item>,
    /// `None` once the environment is torn down: nothing will drain again.
    poke: Option<Tsfn>,
}

struct Tsfn(sys::napi_threadsafe_function);

// SAFETY: napi_call_threadsafe_function may be called from any thread; the
// pointer is only used under the `remote` lock, and cleared under it before
// the function is freed (see `finalize`).
unsafe impl Send for Tsfn {}

impl Shared {
    fn push_remote(&self, item: Item) {
        let mut remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        remote.items.push(item);
        self.has_remote.store(true, Ordering::Release);
        if remote.items.len() == 1 {
            if let Some(poke) = &remote.poke {
                // Non-blocking: the queue is unbounded. A closing function
                // refuses, and then nothing is left to deliver to.
                // SAFETY: `poke` is live while it is in `remote` (see `finalize`).
                unsafe { sys::napi_call_threadsafe_function(poke.0, ptr::null_mut(), 0) };
            }
        }
    }
}

/// A watch registered with the core: see `watch`.
struct Watch {
    registration: Registration,
    ctx: Context,
}

/// What this thread's JS environment keeps.
struct Local {
    shared: Arc<Shared>,
    /// A strong reference to `dispatch`. Deliberately never deleted: it lives
    /// as long as the environment, which frees it.
    dispatch: sys::napi_ref,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    /// The id of the JS environment running on this thread, 0 if none.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// Items pushed on this thread, for this thread's environment.
    static PENDING: RefCell<Vec<Item>> = const { RefCell::new(Vec::new()) };
    /// Live watches by id bits. A fired watch stays until it is delivered.
    static WATCHES: RefCell<HashMap<u64, Watch>> = RefCell::new(HashMap::new());
}

static NEXT_ENV: AtomicU64 = AtomicU64::new(1);

fn check(status: sys::napi_status) -> Result<()> {
    match status {
        sys::Status::napi_ok => Ok(()),
        sys::Status::napi_pending_exception => Err(Error::from_status(Status::PendingException)),
        other => Err(Error::new(Status::from(other), "polyctx: napi call failed")),
    }
}

pub(crate) fn init(env: &Env, dispatch: &Function<'_>) -> Result<()> {
    let raw = env.raw();
    if LOCAL.with(|l| l.borrow().is_some()) {
        return Err(Error::from_reason("polyctx: already initialised in this environment"));
    }
    let shared = Arc::new(Shared {
        env_id: NEXT_ENV.fetch_add(1, Ordering::Relaxed),
        has_remote: AtomicBool::new(false),
        remote: Mutex::new(Remote {
            items: Vec::new(),
            poke: None,
        }),
    });
    let mut dispatch_ref = ptr::null_mut();
    let mut tsfn = ptr::null_mut();
    let mut name = ptr::null_mut();
    // SAFETY: plain napi calls on this thread's environment, with valid
    // out-pointers. The function's context is one strong count on `shared`,
    // given back in `finalize`.
    unsafe {
        check(sys::napi_create_reference(raw, dispatch.raw(), 1, &mut dispatch_ref))?;
        check(sys::napi_create_string_utf8(raw, c"polyctx".as_ptr(), 7, &mut name))?;
        let context = Arc::into_raw(shared.clone()) as *mut c_void;
        check(sys::napi_create_threadsafe_function(
            raw,
            ptr::null_mut(),
            ptr::null_mut(),
            name,
            0,
            1,
            context,
            Some(finalize),
            context,
            Some(on_poke),
            &mut tsfn,
        ))?;
        check(sys::napi_unref_threadsafe_function(raw, tsfn))?;
    }
    shared.remote.lock().unwrap_or_else(PoisonError::into_inner).poke = Some(Tsfn(tsfn));
    CURRENT.with(|c| c.set(shared.env_id));
    LOCAL.with(|l| {
        *l.borrow_mut() = Some(Local {
            shared,
            dispatch: dispatch_ref,
        })
    });
    Ok(())
}

/// The thread-safe function is being freed (the environment is going away).
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the strong count made in `init`.
    let shared = unsafe { Arc::from_raw(data as *const Shared) };
    shared.remote.lock().unwrap_or_else(PoisonError::into_inner).poke = None;
    CURRENT.with(|c| c.set(0));
}

/// Runs on the JS thread after a poke.
unsafe extern "C" fn on_poke(env: sys::napi_env, _js: sys::napi_value, _context: *mut c_void, _data: *mut c_void) {
    if env.is_null() {
        return; // torn down
    }
    // An exception thrown by dispatch stays pending, and Node reports it as
    // uncaught, as for any callback from the event loop.
    let _ = flush_raw(env);
}

/// The environment on this thread. The JS layer calls `init` before anything else.
pub(crate) fn current() -> Arc<Shared> {
    LOCAL.with(|l| {
        l.borrow()
            .as_ref()
            .map(|l| l.shared.clone())
            .expect("polyctx: native module used before init")
    })
}

/// True on the JS thread of `shared`'s environment.
pub(crate) fn is_current(shared: &Shared) -> bool {
    CURRENT.try_with(|c| c.get() == shared.env_id).unwrap_or(false)
}

/// Routes an item to its environment from any thread (module docs).
pub(crate) fn push(shared: &Shared, item: Item) {
    if is_current(shared) && PENDING.try_with(|p| p.borrow_mut().push(item)).is_ok() {
        return;
    }
    shared.push_remote(item);
}

pub(crate) fn watch(ctx: &Context, id: f64) {
    let shared = current();
    let registration = ctx.on_done(move || push(&shared, Item::Done(id)));
    let watch = Watch {
        registration,
        ctx: ctx.clone(),
    };
    WATCHES.with(|w| w.borrow_mut().insert(id.to_bits(), watch));
}

pub(crate) fn unwatch(id: f64) -> bool {
    let (stopped, removed) = WATCHES.with(|w| {
        let mut watches = w.borrow_mut();
        match watches.get(&id.to_bits()) {
            Some(watch) if watch.registration.stop() => (true, watches.remove(&id.to_bits())),
            // Fired: it stays until its item is delivered.
            _ => (false, None),
        }
    });
    drop(removed); // may release values: outside the borrow
    stopped
}

pub(crate) fn err_code(ctx: &Context) -> u32 {
    match ctx.err() {
        None => 0,
        Some(CtxError::Canceled) => 1,
        Some(CtxError::DeadlineExceeded) => 2,
    }
}

/// A cause as the JS layer reads it: a held-table id (> 0), -1 for
/// `Canceled`, -2 for `DeadlineExceeded`, or the text of a cause given in
/// another language or environment.
pub(crate) fn describe_cause(cause: &polyctx::Cause) -> Either<f64, String> {
    match cause.as_context_error() {
        Some(CtxError::Canceled) => return Either::A(-1.0),
        Some(CtxError::DeadlineExceeded) => return Either::A(-2.0),
        None => {}
    }
    match cause.downcast_ref::<JsCause>() {
        Some(js) => match js.local_id() {
            Some(id) => Either::A(id),
            None => Either::B(js.text().to_owned()),
        },
        None => Either::B(cause.to_string()),
    }
}

/// Delivers everything queued for this thread's environment.
pub(crate) fn flush(env: &Env) -> Result<()> {
    flush_raw(env.raw())
}

fn flush_raw(env: sys::napi_env) -> Result<()> {
    let Some((shared, dispatch)) = LOCAL.with(|l| l.borrow().as_ref().map(|l| (l.shared.clone(), l.dispatch))) else {
        return Ok(());
    };
    loop {
        let mut items = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if shared.has_remote.swap(false, Ordering::Acquire) {
            let mut remote = shared.remote.lock().unwrap_or_else(PoisonError::into_inner);
            items.append(&mut remote.items);
        }
        if items.is_empty() {
            return Ok(());
        }
        deliver(env, dispatch, items)?;
    }
}

/// Calls `dispatch(done, released)`: `done` is flat `[id, err, cause, ...]`
/// (see `describe_cause`), `released` a list of held-table ids.
fn deliver(env: sys::napi_env, dispatch: sys::napi_ref, items: Vec<Item>) -> Result<()> {
    let mut done = Vec::new();
    let mut released = Vec::new();
    let mut fired = Vec::new();
    for item in items {
        match item {
            Item::Done(id) => {
                let watch = WATCHES.with(|w| w.borrow_mut().remove(&id.to_bits()));
                if let Some(watch) = watch {
                    let cause = polyctx::cause(&watch.ctx).map_or(Either::A(-1.0), |c| describe_cause(&c));
                    done.push((id, err_code(&watch.ctx), cause));
                    fired.push(watch);
                }
            }
            Item::Release(id) => released.push(id),
        }
    }
    // SAFETY: napi calls on the JS thread of `env`, inside the caller's
    // handle scope (a napi function call, or the thread-safe function's
    // callback); `dispatch` is a live strong reference of this environment.
    let result = unsafe {
        let mut done_js = ptr::null_mut();
        check(sys::napi_create_array_with_length(env, done.len() * 3, &mut done_js))?;
        for (i, (id, err, cause)) in done.iter().enumerate() {
            let i = i as u32 * 3;
            check(sys::napi_set_element(env, done_js, i, double(env, *id)?))?;
            check(sys::napi_set_element(env, done_js, i + 1, double(env, *err as f64)?))?;
            let cause = match cause {
                Either::A(n) => double(env, *n)?,
                Either::B(text) => string(env, text)?,
            };
            check(sys::napi_set_element(env, done_js, i + 2, cause))?;
        }
        let mut released_js = ptr::null_mut();
        check(sys::napi_create_array_with_length(
            env,
            released.len(),
            &mut released_js,
        ))?;
        for (i, id) in released.iter().enumerate() {
            check(sys::napi_set_element(env, released_js, i as u32, double(env, *id)?))?;
        }
        let mut f = ptr::null_mut();
        check(sys::napi_get_reference_value(env, dispatch, &mut f))?;
        let mut this = ptr::null_mut();
        check(sys::napi_get_undefined(env, &mut this))?;
        let args = [done_js, released_js];
        let mut out = ptr::null_mut();
        check(sys::napi_call_function(env, this, f, 2, args.as_ptr(), &mut out))
    };
    drop(fired); // may release values: queued for the next round of `flush`
    result
}

unsafe fn double(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    // SAFETY: as in `deliver`.
    check(unsafe { sys::napi_create_double(env, n, &mut v) })?;
    Ok(v)
}

unsafe fn string(env: sys::napi_env, s: &str) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    // SAFETY: as in `deliver`; the length bounds the read.
    check(unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v) })?;
    Ok(v)
}
