//! Random sequences of C ABI operations, as a C program would make them:
//! every kind of derive (absurd durations included), cancels with and
//! without causes, retains and releases in any order, values, after-funcs
//! stopped or not, waits that must not block, and NULL for each handle.
//! After every operation, what C can observe agrees with the model kept
//! here (a cancelled context and everything derived from it is done, `err`
//! and `is_done` agree, a wait on a done context returns at once); at the
//! end, once every handle is cancelled and released, every after-func has
//! run or been stopped, each finalizer ran exactly once, and no context,
//! deadline or after-func is left in the core.
#![no_main]

use std::ffi::{c_char, c_void};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ctx::abi::*;
use libfuzzer_sys::fuzz_target;

static RAN: AtomicUsize = AtomicUsize::new(0);
static FINALIZED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn run(_: *mut c_void) {
    RAN.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn finalize(_: *mut c_void) {
    FINALIZED.fetch_add(1, Ordering::SeqCst);
}

/// Durations that matter at the boundary: negative, zero, tiny, an hour,
/// and the extremes.
const DURATIONS: [i64; 8] = [i64::MIN, -1, 0, 1, 1_000, 3_600_000_000_000, i64::MAX - 1, i64::MAX];

/// One context C holds: its handle, its cancel handle (if it has one), the
/// entry it was derived from, and whether that link carries cancellation.
struct Entry {
    ctx: *mut ctx_t,
    cancel: *mut ctx_cancel_t,
    parent: Option<usize>,
    inherits: bool,
    released: bool,
}

struct After {
    handle: *mut ctx_after_func_t,
    /// A `ctx_after_func_stop` said it kept the function from running.
    stopped: bool,
}

struct Run {
    entries: Vec<Entry>,
    afters: Vec<After>,
    key: *mut ctx_key_t,
}

impl Run {
    fn live(&self, pick: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.entries.len()).filter(|&i| !self.entries[i].released).collect();
        (!live.is_empty()).then(|| live[usize::from(pick) % live.len()])
    }

    /// Whether cancelling `ancestor` must have made `i` done.
    fn reaches(&self, ancestor: usize, mut i: usize) -> bool {
        loop {
            if i == ancestor {
                return true;
            }
            match (self.entries[i].parent, self.entries[i].inherits) {
                (Some(p), true) => i = p,
                _ => return false,
            }
        }
    }

    fn push(
        &mut self,
        parent: usize,
        inherits: bool,
        status: ctx_status_t,
        ctx: *mut ctx_t,
        cancel: *mut ctx_cancel_t,
    ) {
        assert_eq!(status, ctx_status_t::CTX_OK, "a derive from a live handle failed");
        assert!(!ctx.is_null());
        self.entries.push(Entry {
            ctx,
            cancel,
            parent: Some(parent),
            inherits,
            released: false,
        });
    }

    fn check(&self, i: usize) {
        // A deadline may pass between two calls: done only ever stays done.
        let c = self.entries[i].ctx;
        let done_before = ctx_is_done(c);
        let err = ctx_err(c);
        if done_before {
            assert_ne!(err, ctx_err_t::CTX_ERR_NONE, "is_done and err disagree");
        }
        if err != ctx_err_t::CTX_ERR_NONE {
            assert!(ctx_is_done(c), "is_done and err disagree");
            assert_eq!(
                ctx_wait(c, 0),
                ctx_status_t::CTX_OK,
                "a wait on a done context did not return done"
            );
        } else {
            assert!(matches!(
                ctx_wait(c, 0),
                ctx_status_t::CTX_OK | ctx_status_t::CTX_ETIMEDOUT
            ));
        }
    }

    fn cancelled(&self, i: usize) {
        for j in 0..self.entries.len() {
            if !self.entries[j].released && self.reaches(i, j) {
                assert!(
                    ctx_is_done(self.entries[j].ctx),
                    "a context under a cancelled one is live"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    ctx_debug_track(true); // for ctx_debug_live_contexts
    let (ran, finalized) = (RAN.load(Ordering::SeqCst), FINALIZED.load(Ordering::SeqCst));
    let mut key = null_mut();
    assert_eq!(ctx_key_new(c"k".as_ptr(), &mut key), ctx_status_t::CTX_OK);
    let mut run_ = Run {
        entries: vec![Entry {
            ctx: ctx_background(),
            cancel: null_mut(),
            parent: None,
            inherits: false,
            released: false,
        }],
        afters: Vec::new(),
        key,
    };
    let r = &mut run_;
    let mut bytes = data.iter().copied().take(512);
    while let (Some(op), Some(pick)) = (bytes.next(), bytes.next()) {
        let arg = bytes.next().unwrap_or(0);
        let Some(i) = r.live(pick) else { break };
        let parent = r.entries[i].ctx;
        let (mut ctx, mut cancel) = (null_mut(), null_mut());
        match op % 16 {
            0 => {
                let s = ctx_with_cancel(parent, &mut ctx, &mut cancel);
                r.push(i, true, s, ctx, cancel);
            }
            1 => {
                let s = ctx_with_cancel_cause(parent, &mut ctx, &mut cancel);
                r.push(i, true, s, ctx, cancel);
            }
            2 => {
                let timeout = DURATIONS[usize::from(arg) % DURATIONS.len()];
                let s = ctx_with_timeout(parent, timeout, &mut ctx, &mut cancel);
                r.push(i, true, s, ctx, cancel);
            }
            3 => {
                let at = ctx_now_ns().saturating_add(DURATIONS[usize::from(arg) % DURATIONS.len()]);
                let s = ctx_with_deadline(parent, at, &mut ctx, &mut cancel);
                r.push(i, true, s, ctx, cancel);
            }
            4 => {
                let s = ctx_without_cancel(parent, &mut ctx);
                r.push(i, false, s, ctx, null_mut());
            }
            5 => {
                let s = ctx_with_value_bytes(parent, r.key, [arg].as_ptr().cast(), usize::from(arg % 2), &mut ctx);
                r.push(i, true, s, ctx, null_mut());
            }
            6 | 7 => {
                let c = r.entries[i].cancel;
                if !c.is_null() {
                    let s = if op % 16 == 6 {
                        ctx_cancel(c)
                    } else {
                        ctx_cancel_cause(c, c"why".as_ptr(), i64::from(arg))
                    };
                    assert!(matches!(s, ctx_status_t::CTX_OK | ctx_status_t::CTX_EKIND));
                    if s == ctx_status_t::CTX_OK {
                        r.cancelled(i);
                    }
                }
            }
            8 if i != 0 => {
                let e = &mut r.entries[i];
                e.released = true;
                if arg % 2 == 0 || e.cancel.is_null() {
                    ctx_release(e.ctx);
                    if !e.cancel.is_null() {
                        ctx_cancel_release(e.cancel);
                    }
                } else {
                    ctx_cancel_and_release(e.ctx, e.cancel);
                    r.cancelled(i);
                }
            }
            9 => {
                let (c, k) = (r.entries[i].ctx, r.entries[i].cancel);
                let retained = ctx_retain(c);
                assert_eq!(retained, c, "a retain gives back the same handle");
                let k = if k.is_null() { k } else { ctx_cancel_retain(k) };
                r.entries.push(Entry {
                    ctx: retained,
                    cancel: k,
                    parent: Some(i),
                    inherits: true,
                    released: false,
                });
            }
            10 => {
                let mut after = null_mut();
                let s = ctx_after_func(parent, Some(run), null_mut(), Some(finalize), &mut after);
                assert_eq!(s, ctx_status_t::CTX_OK);
                r.afters.push(After {
                    handle: after,
                    stopped: false,
                });
            }
            11 if !r.afters.is_empty() => {
                let j = usize::from(arg) % r.afters.len();
                let mut stopped = false;
                assert_eq!(
                    ctx_after_func_stop(r.afters[j].handle, &mut stopped),
                    ctx_status_t::CTX_OK
                );
                r.afters[j].stopped |= stopped;
            }
            12 => {
                let (mut data, mut len, mut kind) = (null(), 0, ctx_value_kind_t::CTX_VALUE_POINTER);
                let s = ctx_value(parent, r.key, &mut data, &mut len, &mut kind);
                assert!(matches!(s, ctx_status_t::CTX_OK | ctx_status_t::CTX_ENOTFOUND));
                if s == ctx_status_t::CTX_OK {
                    assert_eq!(kind, ctx_value_kind_t::CTX_VALUE_BYTES);
                    assert!(len <= 1);
                }
            }
            13 => {
                let mut ns = 0;
                let s = ctx_deadline(parent, &mut ns);
                assert!(matches!(s, ctx_status_t::CTX_OK | ctx_status_t::CTX_ENODEADLINE));
            }
            14 => {
                // NULL for each handle: a status, never a crash.
                let nul: *const ctx_t = null();
                assert_eq!(ctx_with_cancel(nul, &mut ctx, &mut cancel), ctx_status_t::CTX_EINVAL);
                assert_eq!(
                    ctx_with_cancel(parent, null_mut(), &mut cancel),
                    ctx_status_t::CTX_EINVAL
                );
                assert_eq!(ctx_cancel(null_mut()), ctx_status_t::CTX_EINVAL);
                assert_eq!(ctx_err(nul), ctx_err_t::CTX_ERR_INVALID);
                assert_eq!(ctx_wait(nul, 0), ctx_status_t::CTX_EINVAL);
                let mut stopped = false;
                assert_eq!(ctx_after_func_stop(null_mut(), &mut stopped), ctx_status_t::CTX_EINVAL);
                let msg: *const c_char = null();
                if !r.entries[i].cancel.is_null() {
                    assert_ne!(ctx_cancel_cause(r.entries[i].cancel, msg, 0), ctx_status_t::CTX_OK);
                }
                ctx_release(null_mut());
                ctx_cancel_release(null_mut());
            }
            _ => {}
        }
        if !r.entries[i].released {
            r.check(i);
        }
    }

    // Cancel and release everything, then stop every after-func: one whose
    // stop fails was taken by a cancel and must run (Go's AfterFunc rule).
    for e in r.entries.iter_mut().filter(|e| !e.released) {
        if !e.cancel.is_null() {
            ctx_cancel_and_release(e.ctx, e.cancel);
        } else {
            ctx_release(e.ctx);
        }
        e.released = true;
    }
    let mut expected_runs = 0;
    for a in &mut r.afters {
        let mut stopped = false;
        assert_eq!(ctx_after_func_stop(a.handle, &mut stopped), ctx_status_t::CTX_OK);
        a.stopped |= stopped;
        expected_runs += usize::from(!a.stopped);
        ctx_after_func_release(a.handle);
    }
    ctx_key_release(r.key);
    // After-funcs run on the core's pool, which also drops their contexts:
    // give them a generous while.
    let registered = r.afters.len();
    let settled = || {
        RAN.load(Ordering::SeqCst) - ran == expected_runs
            && FINALIZED.load(Ordering::SeqCst) - finalized == registered
            && ctx_debug_live_contexts() == 0
            && ctx_debug_live_timers() == 0
            && ctx_debug_pending_after_funcs() == 0
    };
    let until = Instant::now() + Duration::from_secs(30);
    while !settled() && Instant::now() < until {
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(
        RAN.load(Ordering::SeqCst) - ran,
        expected_runs,
        "an after-func ran not exactly once"
    );
    assert_eq!(
        FINALIZED.load(Ordering::SeqCst) - finalized,
        registered,
        "a finalizer did not run exactly once"
    );
    assert_eq!(ctx_debug_live_contexts(), 0, "a context outlived its handles");
    assert_eq!(ctx_debug_live_timers(), 0, "a deadline stayed armed");
    assert_eq!(ctx_debug_pending_after_funcs(), 0, "an after-func is still pending");
});
