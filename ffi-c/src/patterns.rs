//! The article's patterns for C threads: a group of tasks under one context
//! (the core's `patterns::scope`, Go's errgroup), retry with backoff (the
//! core's `Backoff`, and its blocking loop `patterns::retry`), and sleeping
//! as long as a context allows.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use polyctx::patterns::{self, Backoff, Failure, GiveUp, Next, RetryError};
use polyctx::{Cause, Context};

use crate::handle::{self, ctx_t};
use crate::status::{arg, boundary, ctx_status_t, put};

/// The function of a `ctx_task_t`: given the group's context (borrowed for
/// the call) and the task's `userdata`, it returns 0 for success, anything
/// else for failure (the first failure's number becomes the code of the
/// group's cause).
pub type ctx_task_fn = Option<unsafe extern "C" fn(ctx: *const ctx_t, userdata: *mut c_void) -> c_int>;

/// A task of `ctx_group_run`: `fn(ctx, userdata)`, run on a thread of its own.
#[repr(C)]
pub struct ctx_task_t {
    pub r#fn: ctx_task_fn,
    pub userdata: *mut c_void,
}

/// A task's failure, for the core's group (the index and number are kept
/// beside it, with the cause that carries them).
struct TaskFailed;

impl std::fmt::Display for TaskFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a task failed")
    }
}

/// The `userdata` of a task, sent to its thread (the header makes it the
/// caller's promise that this is fine).
struct Userdata(*mut c_void);
// SAFETY: the header's contract for `ctx_group_run`: `userdata` is used on
// the task's thread.
unsafe impl Send for Userdata {}

/// Runs `n` tasks, each on a thread of its own, under one context derived
/// from `parent` (Go's `errgroup.WithContext`), and returns once every one
/// has returned. The first task to fail (return non-zero) cancels the
/// group's context, so that the others can stop early: its cause is
/// "task I failed" with the number the task returned as its code
/// (`ctx_cause`). With `limit` > 0, at most `limit` tasks run at once; the
/// others start as running ones return, and a task whose turn comes after
/// the group's context is done still starts (and should return at once,
/// seeing it done). No thread outlives the call.
///
/// Each task gets the group's context borrowed for the call (retain it to
/// keep it longer); it is done when `parent` is, at the first failure, and
/// once the call returns. Tasks run on threads this call starts, and must
/// return (not `longjmp` out); `userdata` is passed along untouched.
///
/// Returns `CTX_OK` when every task returned 0; `CTX_ETASK` when one
/// failed, and then, unless `failed` is NULL, `*failed` is the index of the
/// first task to fail. `CTX_ESYS` if a thread could not be started: the
/// tasks already started were canceled (cause "could not start a thread")
/// and waited for, and the rest never ran.
///
/// Errors: `CTX_EINVAL` if `parent` is NULL, `tasks` is NULL with `n > 0`,
/// or a task's `fn` is NULL (then no task runs). Threads: any; blocks until
/// every task has returned.
#[no_mangle]
pub extern "C" fn ctx_group_run(
    parent: *const ctx_t,
    tasks: *const ctx_task_t,
    n: usize,
    limit: usize,
    failed: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let parent = arg!(parent);
        let tasks: &[ctx_task_t] = if n == 0 {
            &[]
        } else {
            // SAFETY: `tasks` points to `n` tasks (header contract).
            unsafe { std::slice::from_raw_parts(arg!(tasks).as_ptr(), n) }
        };
        let Some(fns) = tasks.iter().map(|t| t.r#fn).collect::<Option<Vec<_>>>() else {
            return ctx_status_t::CTX_EINVAL;
        };
        // SAFETY: the caller owns `parent`.
        let parent = unsafe { handle::ctx_borrow(parent) };
        // The group's context is a child of this one, which carries the
        // first failure's cause with its code (the core's group gives a
        // cause text only), or ends the group if a thread cannot start.
        let (outer, end) = polyctx::with_cancel_cause(&parent);
        let _end = end.clone().guard();
        let first: Mutex<Option<usize>> = Mutex::new(None);
        let mut spawn_failed = false;
        let run = patterns::scope(&outer, (limit > 0).then_some(limit), |group| {
            for (i, (f, task)) in fns.into_iter().zip(tasks).enumerate() {
                let userdata = Userdata(task.userdata);
                let (first, end) = (&first, &end);
                let spawned = catch_unwind(AssertUnwindSafe(|| {
                    group.spawn(move |ctx: &Context| {
                        let userdata = userdata;
                        let raw = handle::ctx_into_raw(ctx.clone());
                        // SAFETY: the header's contract for `fn`; the handle
                        // is a reference of the group's, released below.
                        let code = unsafe { f(raw, userdata.0) };
                        // SAFETY: `raw` is the reference made above.
                        drop(unsafe { handle::ctx_from_raw(std::ptr::NonNull::new(raw).expect("a handle")) });
                        if code == 0 {
                            return Ok(());
                        }
                        let mut first = first.lock().unwrap_or_else(PoisonError::into_inner);
                        if first.is_none() {
                            *first = Some(i);
                            end.cancel(Some(Cause::with_code(format!("task {i} failed"), i64::from(code))));
                        }
                        Err(TaskFailed)
                    })
                }));
                if spawned.is_err() {
                    end.cancel(Some(Cause::msg("could not start a thread")));
                    spawn_failed = true;
                    return;
                }
            }
        });
        if spawn_failed {
            return ctx_status_t::CTX_ESYS;
        }
        let index = first.into_inner().unwrap_or_else(PoisonError::into_inner);
        match run {
            Ok(()) => ctx_status_t::CTX_OK,
            Err(TaskFailed) => {
                if let (Some(out), Some(i)) = (std::ptr::NonNull::new(failed), index) {
                    put(out, i);
                }
                ctx_status_t::CTX_ETASK
            }
        }
    })
}

/// How to space the attempts of a retry loop: the core's rules, whose
/// decisions `ctx_backoff_next` gives and `ctx_retry` follows. Start from
/// `ctx_backoff_default` and change what you need.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ctx_backoff_t {
    /// The wait after the first failure, in nanoseconds (default 100 ms).
    pub initial_ns: i64,
    /// The longest wait (default 10 s).
    pub max_ns: i64,
    /// Each wait is this many times the previous one, before jitter; at least 1 (default 2).
    pub multiplier: f64,
    /// How much of each wait is random, 0 to 1 (default 0.2): a wait of d
    /// becomes a uniform pick in [d * (1 - jitter), d], so that clients that
    /// failed together do not retry together.
    pub jitter: f64,
    /// Give up after this many attempts; 0 for no limit but the context's
    /// time (the default).
    pub max_attempts: u32,
    /// How long one attempt is expected to take, or 0 if unknown (the
    /// default): an attempt that the context's remaining time cannot fit is
    /// never started.
    pub attempt_ns: i64,
}

/// Fills `*out` with the default backoff: 100 ms doubling to at most 10 s,
/// 20% jitter, no attempt limit, no expected attempt time.
///
/// Errors: `CTX_EINVAL` if `out` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_backoff_default(out: *mut ctx_backoff_t) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        let d = Backoff::default();
        let ns = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        put(
            out,
            ctx_backoff_t {
                initial_ns: ns(d.initial),
                max_ns: ns(d.max),
                multiplier: d.multiplier,
                jitter: d.jitter,
                max_attempts: d.max_attempts.unwrap_or(0),
                attempt_ns: d.attempt_time.map_or(0, ns),
            },
        );
        ctx_status_t::CTX_OK
    })
}

/// The core's `Backoff` of `b`, if its settings make sense.
fn backoff_of(b: &ctx_backoff_t) -> Option<Backoff> {
    let ns = |n: i64| u64::try_from(n).ok().map(Duration::from_nanos);
    let backoff = Backoff {
        initial: ns(b.initial_ns)?,
        max: ns(b.max_ns)?,
        multiplier: b.multiplier,
        jitter: b.jitter,
        max_attempts: (b.max_attempts > 0).then_some(b.max_attempts),
        attempt_time: match b.attempt_ns {
            0 => None,
            n => Some(ns(n)?),
        },
    };
    backoff.check().ok().map(|()| backoff)
}

fn give_up(why: &GiveUp) -> ctx_status_t {
    match why {
        GiveUp::Attempts => ctx_status_t::CTX_EATTEMPTS,
        GiveUp::Deadline => ctx_status_t::CTX_EDEADLINE,
        GiveUp::Canceled(_) => ctx_status_t::CTX_ECANCELED,
    }
}

/// The decision after `attempts` failed attempts (0: before the first):
/// `CTX_OK` with `*wait_ns` set to how long to wait before the next
/// attempt (wait with `ctx_sleep`, which ends early if `ctx` is done), or
/// why to give up: `CTX_EATTEMPTS` (`max_attempts` attempts failed),
/// `CTX_EDEADLINE` (the deadline passed, or what is left of it cannot fit
/// the wait and another attempt) or `CTX_ECANCELED` (`ctx_cause` says why).
/// The rules are the core's, the same in every language.
///
/// Errors: `CTX_EINVAL` if a pointer is NULL or `b` makes no sense (a
/// negative time, a multiplier below 1 or not a number, a jitter outside 0
/// to 1). Threads: any.
#[no_mangle]
pub extern "C" fn ctx_backoff_next(
    ctx: *const ctx_t,
    b: *const ctx_backoff_t,
    attempts: u32,
    wait_ns: *mut i64,
) -> ctx_status_t {
    boundary(|| {
        let (ctx, b, wait_ns) = (arg!(ctx), arg!(b), arg!(wait_ns));
        // SAFETY: `b` points to a readable `ctx_backoff_t` (header contract).
        let Some(backoff) = backoff_of(unsafe { b.as_ref() }) else {
            return ctx_status_t::CTX_EINVAL;
        };
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        match backoff.next(&ctx, attempts) {
            Next::Wait(d) => {
                put(wait_ns, i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
                ctx_status_t::CTX_OK
            }
            Next::GiveUp(why) => give_up(&why),
        }
    })
}

/// What an attempt of `ctx_retry` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ctx_attempt_t {
    /// It succeeded: `ctx_retry` returns `CTX_OK`.
    CTX_ATTEMPT_OK = 0,
    /// It failed in a way worth retrying (a timeout, a 503, a reset connection).
    CTX_ATTEMPT_RETRY = 1,
    /// It failed in a way not worth retrying (a 400, a bad password):
    /// `ctx_retry` returns `CTX_ETASK` at once. So does any other number.
    CTX_ATTEMPT_FATAL = 2,
}

impl ctx_attempt_t {
    /// What an attempt returned: any number but the first two is fatal.
    fn from_c(n: c_int) -> ctx_attempt_t {
        [ctx_attempt_t::CTX_ATTEMPT_OK, ctx_attempt_t::CTX_ATTEMPT_RETRY]
            .into_iter()
            .find(|a| *a as c_int == n)
            .unwrap_or(ctx_attempt_t::CTX_ATTEMPT_FATAL)
    }
}

/// An attempt of `ctx_retry`: given the context (borrowed), the attempt's
/// number (from 1) and the `userdata` given to `ctx_retry`, it returns a
/// `ctx_attempt_t`.
pub type ctx_attempt_fn = Option<unsafe extern "C" fn(ctx: *const ctx_t, attempt: u32, userdata: *mut c_void) -> c_int>;

/// Calls `fn(ctx, attempt, userdata)` (`attempt` from 1) until it returns
/// `CTX_ATTEMPT_OK`, returns anything but `CTX_ATTEMPT_RETRY`, or the
/// backoff gives up, waiting between attempts as `ctx_backoff_next` says.
/// One budget, `ctx`'s, covers every attempt and wait; a wait ends the
/// moment `ctx` is done. `fn` runs on the calling thread.
///
/// Returns `CTX_OK` (an attempt succeeded), `CTX_ETASK` (an attempt failed
/// in a way not worth retrying), or why it gave up: `CTX_EATTEMPTS`,
/// `CTX_EDEADLINE` or `CTX_ECANCELED`. Unless `attempts` is NULL, sets
/// `*attempts` to how many attempts ran, whatever the result (but
/// `CTX_EINVAL`). Keep what an attempt needs to report (its last error) in
/// `userdata`.
///
/// Errors: `CTX_EINVAL` if `ctx`, `b` or `fn` is NULL, or `b` makes no
/// sense (see `ctx_backoff_next`). Threads: any; blocks.
#[no_mangle]
pub extern "C" fn ctx_retry(
    ctx: *const ctx_t,
    b: *const ctx_backoff_t,
    r#fn: ctx_attempt_fn,
    userdata: *mut c_void,
    attempts: *mut u32,
) -> ctx_status_t {
    boundary(|| {
        let (raw, b, f) = (arg!(ctx), arg!(b), arg!(r#fn));
        // SAFETY: `b` points to a readable `ctx_backoff_t`.
        let Some(backoff) = backoff_of(unsafe { b.as_ref() }) else {
            return ctx_status_t::CTX_EINVAL;
        };
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(raw) };
        let mut ran = 0;
        let result = patterns::retry(&ctx, &backoff, |attempt| {
            ran = attempt;
            // SAFETY: the header's contract for `fn`; `ctx` is the caller's.
            match ctx_attempt_t::from_c(unsafe { f(raw.as_ptr(), attempt, userdata) }) {
                ctx_attempt_t::CTX_ATTEMPT_OK => Ok(()),
                ctx_attempt_t::CTX_ATTEMPT_RETRY => Err(Failure::Retry(())),
                ctx_attempt_t::CTX_ATTEMPT_FATAL => Err(Failure::Fatal(())),
            }
        });
        if let Some(out) = std::ptr::NonNull::new(attempts) {
            put(out, ran);
        }
        match result {
            Ok(()) => ctx_status_t::CTX_OK,
            Err(RetryError::Fatal(())) => ctx_status_t::CTX_ETASK,
            Err(RetryError::GaveUp { why, .. }) => give_up(&why),
        }
    })
}

/// Sleeps `ns` nanoseconds (zero or less: not at all), or until `ctx` is
/// done, whichever is first. Returns `CTX_OK` if it slept the whole time,
/// `CTX_ECANCELED` or `CTX_EDEADLINE` if `ctx` was or became done first
/// (canceled, or past its deadline). The inverse of `ctx_wait`'s view.
///
/// Errors: `CTX_EINVAL` if `ctx` is NULL. Threads: any; blocks.
#[no_mangle]
pub extern "C" fn ctx_sleep(ctx: *const ctx_t, ns: i64) -> ctx_status_t {
    boundary(|| {
        let ctx = arg!(ctx);
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        let d = Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
        match patterns::sleep(&ctx, d) {
            Ok(()) => ctx_status_t::CTX_OK,
            Err(polyctx::Error::Canceled) => ctx_status_t::CTX_ECANCELED,
            Err(polyctx::Error::DeadlineExceeded) => ctx_status_t::CTX_EDEADLINE,
        }
    })
}
