//! How the core's events reach JS: done contexts (to abort signals and run
//! after-funcs) and held values to release.
//!
//! Each JS environment (the main thread, each worker) has a [`Shared`]
//! record. Core callbacks and drops run on whatever thread cancels or drops
//! (the JS thread itself, the core's timer thread, C code); they only push
//! an [`Item`]:
//! - on the environment's own JS thread, into a thread-local queue that the
//!   native call in progress reports before it returns to JS, so that
//!   `cancel()` has aborted every signal when it returns;
//! - on any other thread, into the shared queue, poking one thread-safe
//!   function when the queue goes from empty to non-empty. The poke calls
//!   the JS layer's `dispatch` on the JS thread, which drains the batch.
//!
//! Items reach JS as numbers written into a `Float64Array` the JS layer
//! owns (`drain`): no JS value is made or touched off the JS thread, and a
//! cancel that reaches one signal costs no JS allocation here. The
//! thread-safe function is unref'd, so it never keeps the process alive:
//! pending deadlines, signals and `done()` promises do not, as with
//! `AbortSignal.timeout`.
//!
//! When an environment shuts down (a worker ends, an embedder tears one
//! down), its cleanup hook ([`shutdown`]) frees every handle, watch and
//! queued item it still has: a worker's contexts do not outlive it. When the
//! process itself is exiting, it only makes sure nothing is freed later.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use napi::bindgen_prelude::*;
use napi::sys;
use polyctx::wire::{EndReason, END_REASONS};
use polyctx::{Context, Error as CtxError, Registration};

use crate::held::JsCause;
use crate::protocol::{
    CAUSE_IS_ERR, CAUSE_REASON, CAUSE_TEXT, ERR_CANCELED, ERR_DEADLINE_EXCEEDED, ERR_NONE, EVENT_RELEASE, EVENT_SIZE,
};

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
    /// `None` once the environment is torn down: nothing will drain again,
    /// and items are dropped instead of queued.
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
        if remote.poke.is_none() {
            return; // torn down (`init` sets `poke` before anyone can push)
        }
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
    /// Strong references, deliberately never deleted: they live as long as
    /// the environment, which frees them.
    dispatch: sys::napi_ref,
    _buffer: sys::napi_ref,
    /// The JS layer's `Float64Array` that `drain` writes items into; its
    /// backing store never moves while the reference holds it.
    out: *mut f64,
    out_len: usize,
    /// Valid for as long as this thread runs the environment.
    env: sys::napi_env,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    /// The id of the JS environment running on this thread, 0 if none.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// Items pushed on this thread, for this thread's environment, and items
    /// a full buffer left for the next `drain`.
    static PENDING: RefCell<VecDeque<Item>> = const { RefCell::new(VecDeque::new()) };
    /// Live watches by id bits. A fired watch stays until it is drained.
    static WATCHES: RefCell<HashMap<u64, Watch>> = RefCell::new(HashMap::new());
    /// Native bytes allocated for JS wrappers and not yet told to V8.
    static EXTERNAL: Cell<i64> = const { Cell::new(0) };
    /// Texts of causes from other languages in the last drain (see `drain`).
    static TEXTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ENV: AtomicU64 = AtomicU64::new(1);
/// Live watches, process-wide (the test hooks).
static WATCH_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Set when the main thread emits `process.on('exit')`: see [`shutdown`].
static PROCESS_EXITING: AtomicBool = AtomicBool::new(false);

fn check(status: sys::napi_status) -> Result<()> {
    match status {
        sys::Status::napi_ok => Ok(()),
        sys::Status::napi_pending_exception => Err(Error::from_status(Status::PendingException)),
        other => Err(Error::new(Status::from(other), "polyctx: napi call failed")),
    }
}

pub(crate) fn init(env: &Env, dispatch: &Function<'_>, buffer: &Unknown<'_>) -> Result<()> {
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
    let mut buffer_ref = ptr::null_mut();
    let mut out = ptr::null_mut();
    let mut out_len = 0;
    let mut kind = 0;
    let mut tsfn = ptr::null_mut();
    let mut name = ptr::null_mut();
    // SAFETY: plain napi calls on this thread's environment, with valid
    // out-pointers. The function's context is one strong count on `shared`,
    // given back in `finalize`.
    unsafe {
        let buffer = buffer.raw();
        check(sys::napi_get_typedarray_info(
            raw,
            buffer,
            &mut kind,
            &mut out_len,
            &mut out,
            ptr::null_mut(),
            ptr::null_mut(),
        ))?;
        check(sys::napi_create_reference(raw, dispatch.raw(), 1, &mut dispatch_ref))?;
        check(sys::napi_create_reference(raw, buffer, 1, &mut buffer_ref))?;
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
        check(sys::napi_add_env_cleanup_hook(raw, Some(shutdown), ptr::null_mut()))?;
    }
    if kind != sys::TypedarrayType::float64_array || out_len < EVENT_SIZE as usize {
        return Err(Error::from_reason(
            "polyctx: the event buffer must be a Float64Array of EVENT_SIZE or more",
        ));
    }
    shared.remote.lock().unwrap_or_else(PoisonError::into_inner).poke = Some(Tsfn(tsfn));
    crate::handle::open();
    CURRENT.with(|c| c.set(shared.env_id));
    LOCAL.with(|l| {
        *l.borrow_mut() = Some(Local {
            shared,
            dispatch: dispatch_ref,
            _buffer: buffer_ref,
            out: out.cast(),
            out_len,
            env: raw,
        })
    });
    Ok(())
}

/// The environment is shutting down, on its own thread, with no more JS to
/// run: frees what it still holds (module docs). Values the core still
/// holds elsewhere (in contexts that other environments or languages keep)
/// are dropped when those let go, and their release items with them.
unsafe extern "C" fn shutdown(_arg: *mut c_void) {
    if PROCESS_EXITING.load(Ordering::Relaxed) {
        // The process gives everything back at once; only make sure that
        // nothing is freed from here on.
        crate::handle::close();
        return;
    }
    crate::debug::shutdown();
    crate::handle::free_all();
    let watches: Vec<Watch> = WATCHES.with(|w| w.borrow_mut().drain().map(|(_, watch)| watch).collect());
    WATCH_COUNT.fetch_sub(watches.len(), Ordering::Relaxed);
    for watch in &watches {
        watch.registration.stop();
    }
    drop(watches);
    let local = LOCAL.with(|l| l.borrow_mut().take());
    if let Some(local) = local {
        let mut remote = local.shared.remote.lock().unwrap_or_else(PoisonError::into_inner);
        remote.items = Vec::new();
        // The function itself is closed and freed by Node (`finalize`).
        remote.poke = None;
    }
    PENDING.with(|p| *p.borrow_mut() = VecDeque::new());
    TEXTS.with(|t| *t.borrow_mut() = Vec::new());
    CURRENT.with(|c| c.set(0));
}

/// The process is exiting (the main thread's `'exit'` event): environments
/// shutting down from now on skip freeing what the process gives back anyway.
pub(crate) fn process_exiting() {
    PROCESS_EXITING.store(true, Ordering::Relaxed);
}

/// The thread-safe function is being freed (the environment is going away).
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the strong count made in `init`.
    let shared = unsafe { Arc::from_raw(data as *const Shared) };
    shared.remote.lock().unwrap_or_else(PoisonError::into_inner).poke = None;
    CURRENT.with(|c| c.set(0));
}

/// Runs on the JS thread after a poke: calls `dispatch()`, which drains.
unsafe extern "C" fn on_poke(env: sys::napi_env, _js: sys::napi_value, _context: *mut c_void, _data: *mut c_void) {
    let Some(dispatch) = LOCAL.with(|l| l.borrow().as_ref().map(|l| l.dispatch)) else {
        return;
    };
    if env.is_null() {
        return; // torn down
    }
    // SAFETY: on the JS thread, inside the scope Node opens for this
    // callback; `dispatch` is a live strong reference of this environment.
    // An exception it throws stays pending, and Node reports it as
    // uncaught, as for any callback from the event loop.
    unsafe {
        let (mut f, mut this, mut out) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        if sys::napi_get_reference_value(env, dispatch, &mut f) == sys::Status::napi_ok
            && sys::napi_get_undefined(env, &mut this) == sys::Status::napi_ok
        {
            sys::napi_call_function(env, this, f, 0, ptr::null(), &mut out);
        }
    }
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

thread_local! {
    /// How deep this thread is in native calls that drain before they
    /// return (a cancel from JS, say): only then does the JS layer dispatch
    /// what was queued here, synchronously, right after the call.
    static DRAINING_CALL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Marks a native call whose caller dispatches what `drain` returns; items
/// pushed on this thread meanwhile are queued for that drain.
pub(crate) struct DrainingCall(());

impl DrainingCall {
    pub(crate) fn enter() -> DrainingCall {
        DRAINING_CALL.with(|d| d.set(d.get() + 1));
        DrainingCall(())
    }
}

impl Drop for DrainingCall {
    fn drop(&mut self) {
        DRAINING_CALL.with(|d| d.set(d.get() - 1));
    }
}

/// Routes an item to its environment from any thread (module docs). On the
/// JS thread inside a draining call, it waits for that call's drain;
/// anywhere else (another thread, or C code cancelling on the JS thread
/// outside any polyctx call, as a C addon or an FFI library does) it goes
/// through the thread-safe function, delivered on the loop's next turn.
pub(crate) fn push(shared: &Shared, item: Item) {
    let draining = DRAINING_CALL.try_with(|d| d.get() > 0).unwrap_or(false);
    if draining && is_current(shared) && PENDING.try_with(|p| p.borrow_mut().push_back(item)).is_ok() {
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
    WATCH_COUNT.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn unwatch(id: f64) -> bool {
    let (stopped, removed) = WATCHES.with(|w| {
        let mut watches = w.borrow_mut();
        match watches.get(&id.to_bits()) {
            Some(watch) if watch.registration.stop() => {
                WATCH_COUNT.fetch_sub(1, Ordering::Relaxed);
                (true, watches.remove(&id.to_bits()))
            }
            // Fired: it stays until its item is delivered.
            _ => (false, None),
        }
    });
    drop(removed); // may release values: outside the borrow
    stopped
}

/// Accounts for native memory that JS wrappers keep alive, so that V8
/// collects (and finalizes) wrappers as often as that memory warrants: a
/// wrapper is a few bytes of JS heap holding a hundred of native memory.
/// Reported to V8 in steps, to keep it off the hot path. JS thread only.
pub(crate) fn external(bytes: i64) {
    const STEP: i64 = 256 * 1024;
    let pending = EXTERNAL.with(|e| {
        let pending = e.get() + bytes;
        if pending.abs() < STEP {
            e.set(pending);
            0
        } else {
            e.set(0);
            pending
        }
    });
    if pending != 0 {
        if let Some(env) = LOCAL.with(|l| l.borrow().as_ref().map(|l| l.env)) {
            let mut total = 0;
            // SAFETY: on the environment's JS thread.
            unsafe { sys::napi_adjust_external_memory(env, pending, &mut total) };
        }
    }
}

/// Live watches, process-wide (the test hooks).
pub(crate) fn watch_count() -> usize {
    WATCH_COUNT.load(Ordering::Relaxed)
}

pub(crate) fn is_watched(id: f64) -> bool {
    WATCHES.with(|w| w.borrow().contains_key(&id.to_bits()))
}

pub(crate) fn err_code(ctx: &Context) -> u32 {
    match ctx.err() {
        None => ERR_NONE,
        Some(CtxError::Canceled) => ERR_CANCELED,
        Some(CtxError::DeadlineExceeded) => ERR_DEADLINE_EXCEEDED,
    }
}

/// A cause of `ctx` as the JS layer reads it: a held-table id (> 0),
/// `CAUSE_IS_ERR` for the context's own error, `CAUSE_REASON - i` for an
/// end reason, or the text of a cause given in another language or environment.
pub(crate) fn describe_cause(cause: &polyctx::Cause, ctx: &Context) -> Either<f64, String> {
    let reason = match cause.as_context_error() {
        Some(e) if Some(e) == ctx.err() => return Either::A(CAUSE_IS_ERR.into()),
        Some(CtxError::Canceled) => Some(EndReason::Canceled),
        Some(CtxError::DeadlineExceeded) => Some(EndReason::DeadlineExceeded),
        None => cause.downcast_ref::<EndReason>().copied(),
    };
    if let Some(i) = reason.and_then(|r| END_REASONS.iter().position(|&x| x == r)) {
        return Either::A(f64::from(CAUSE_REASON) - i as f64);
    }
    match cause.payload::<JsCause>().and_then(JsCause::local_id) {
        Some(id) => Either::A(id),
        None => Either::B(cause.to_string()),
    }
}

/// Writes queued items for this thread's environment into the JS layer's
/// buffer as `[id, code, cause]` events (`protocol`) and returns how many; 0
/// when nothing is queued. `code` is the `err` of a done watch's context, or
/// `EVENT_RELEASE` for a released held id. `cause` is as `describe_cause`
/// gives it, except that a text is replaced by `CAUSE_TEXT - k`, `k` its
/// index for `cause_text`. Items that do not fit stay for the next call.
pub(crate) fn drain() -> u32 {
    let Some((shared, out, out_len)) =
        LOCAL.with(|l| l.borrow().as_ref().map(|l| (l.shared.clone(), l.out, l.out_len)))
    else {
        return 0;
    };
    if shared.has_remote.swap(false, Ordering::Acquire) {
        let remote = std::mem::take(&mut shared.remote.lock().unwrap_or_else(PoisonError::into_inner).items);
        PENDING.with(|p| p.borrow_mut().extend(remote));
    }
    const SIZE: usize = EVENT_SIZE as usize;
    let capacity = out_len / SIZE;
    let mut written = 0;
    let mut fired = Vec::new();
    let mut texts = Vec::new();
    while written < capacity {
        let Some(item) = PENDING.with(|p| p.borrow_mut().pop_front()) else {
            break;
        };
        let triple = match item {
            Item::Done(id) => {
                let Some(watch) = WATCHES.with(|w| w.borrow_mut().remove(&id.to_bits())) else {
                    continue; // stopped after it fired
                };
                WATCH_COUNT.fetch_sub(1, Ordering::Relaxed);
                let cause = match polyctx::cause(&watch.ctx).map(|c| describe_cause(&c, &watch.ctx)) {
                    Some(Either::A(n)) => n,
                    Some(Either::B(text)) => {
                        texts.push(text);
                        f64::from(CAUSE_TEXT) - (texts.len() - 1) as f64
                    }
                    None => CAUSE_IS_ERR.into(),
                };
                let err = err_code(&watch.ctx).into();
                fired.push(watch);
                [id, err, cause]
            }
            Item::Release(id) => [id, EVENT_RELEASE.into(), 0.0],
        };
        // SAFETY: `out` is the live buffer's data and `written < out_len / SIZE`.
        unsafe { ptr::copy_nonoverlapping(triple.as_ptr(), out.add(written * SIZE), SIZE) };
        written += 1;
    }
    TEXTS.with(|t| *t.borrow_mut() = texts);
    // Dropping a fired watch may release values: queued for the next call.
    drop(fired);
    written as u32
}

/// The text of a cause from another language in the last `drain`.
pub(crate) fn cause_text(k: u32) -> Option<String> {
    TEXTS.with(|t| t.borrow().get(k as usize).cloned())
}
