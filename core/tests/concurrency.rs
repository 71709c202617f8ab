//! The core under real concurrency: races between deriving, cancelling,
//! dropping, waiting and the timer, checked by what the process-wide
//! counters say afterwards. One test binary of its own, and one test at a
//! time within it (`serial`), because `stats::pending_deadlines()` counts
//! every deadline in the process.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use polyctx::{
    after_func, stats, with_cancel, with_cancel_cause, with_deadline, with_timeout, with_value, without_cancel, Cause,
    Context, Key,
};

const HOUR: Duration = Duration::from_secs(3600);
const PATIENCE: Duration = Duration::from_secs(20);

/// Scales counts down under Miri, which runs this file too, and up tenfold
/// under `make stress` (POLYCTX_STRESS=1).
fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else if stress() {
        native * 10
    } else {
        native
    }
}

fn stress() -> bool {
    std::env::var_os("POLYCTX_STRESS").is_some()
}

fn serial() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two threads meet at `arrive` many times without a syscall, so that the
/// operations after it race as closely as the hardware allows.
struct SpinBarrier {
    arrived: AtomicUsize,
}

impl SpinBarrier {
    fn arrive(&self, round: usize) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        while self.arrived.load(Ordering::Acquire) < 2 * (round + 1) {
            std::hint::spin_loop();
        }
    }
}

/// A parent canceled while a child with its own deadline is derived from it:
/// the child's insertion into the timer and the parent's walk marking it
/// done must not both miss each other. If they did, a done child would stay
/// in the timer heap after it is freed (a dangling entry).
#[test]
fn deriving_a_deadline_child_while_the_parent_is_canceled_leaves_no_timer_entry() {
    let _serial = serial();
    let rounds = scaled(1_000_000, 40);
    let time_limit = Duration::from_secs(if stress() { 60 } else { 4 });
    let barrier = Arc::new(SpinBarrier {
        arrived: AtomicUsize::new(0),
    });
    let parents: Arc<Mutex<Vec<Option<polyctx::CancelFunc>>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let canceller = {
        let (barrier, parents, stop) = (barrier.clone(), parents.clone(), stop.clone());
        thread::spawn(move || {
            for round in 0.. {
                barrier.arrive(2 * round);
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let cancel = parents.lock().unwrap()[round].take().unwrap();
                cancel.cancel();
                barrier.arrive(2 * round + 1);
            }
        })
    };
    let started = Instant::now();
    let mut done_rounds = 0;
    for round in 0..rounds {
        let (parent, cancel_parent) = with_cancel(&Context::background());
        parents.lock().unwrap().push(Some(cancel_parent));
        barrier.arrive(2 * round);
        let (child, cancel_child) = with_timeout(&parent, HOUR);
        barrier.arrive(2 * round + 1);
        assert!(child.is_done(), "the parent was canceled, so the child is done");
        drop((child, cancel_child, parent));
        let pending = stats::pending_deadlines();
        assert_eq!(pending, 0, "round {round}: a done child was left in the timer heap");
        done_rounds = round + 1;
        if started.elapsed() > time_limit {
            break;
        }
    }
    stop.store(true, Ordering::Release);
    barrier.arrive(2 * done_rounds);
    canceller.join().unwrap();
    eprintln!("{done_rounds} racing rounds, no stale timer entry");
}

/// Records how often each registered function ran (a stop that kept one
/// from running counts as its one outcome).
struct Ledger {
    runs: Vec<AtomicUsize>,
}

impl Ledger {
    fn new(n: usize) -> Arc<Ledger> {
        Arc::new(Ledger {
            runs: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    fn record(&self, id: usize) {
        self.runs[id].fetch_add(1, Ordering::SeqCst);
    }

    /// Waits (bounded) until every entry is 1; panics on any other count.
    fn expect_each_once(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let runs: Vec<usize> = self.runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
            assert!(runs.iter().all(|&n| n <= 1), "a function ran twice: {runs:?}");
            if runs.iter().all(|&n| n == 1) {
                return;
            }
            assert!(Instant::now() < deadline, "functions never ran: {runs:?}");
            thread::sleep(Duration::from_millis(1)); // polling a counter, bounded by PATIENCE
        }
    }
}

type Canceller = Box<dyn Fn() + Send>;

/// One derived context of a kind chosen by `kind`; `detached` when its
/// parent's cancellation does not reach it.
fn derive(parent: &Context, kind: usize, key: &Key<usize>, id: usize) -> (Context, Canceller, bool) {
    match kind % 6 {
        0 => {
            let (c, f) = with_cancel(parent);
            (c, Box::new(move || f.cancel()), false)
        }
        1 => {
            let (c, f) = with_cancel_cause(parent);
            (c, Box::new(move || f.cancel(Some(Cause::msg("worker")))), false)
        }
        2 => {
            let (c, f) = with_timeout(parent, Duration::from_micros((id % 7) as u64 * 100));
            (c, Box::new(move || f.cancel()), false)
        }
        3 => {
            let at = Instant::now() + if id % 3 == 0 { HOUR } else { Duration::ZERO };
            let (c, f) = with_deadline(parent, at);
            (c, Box::new(move || f.cancel()), false)
        }
        4 => {
            let (c, f) = with_cancel(&with_value(parent, key, id));
            (c, Box::new(move || f.cancel()), false)
        }
        _ => {
            let (c, f) = with_timeout(&without_cancel(parent), HOUR);
            (c, Box::new(move || f.cancel()), true)
        }
    }
}

/// Sixteen threads derive every kind of context from shared parents, cancel
/// with causes, drop, wait, register on-done callbacks and after-funcs and
/// stop some, while the shared root is canceled under them. Afterwards:
/// every function ran exactly once unless its stop returned true, no wait
/// on a done context stayed blocked, and the tree, the timer and the
/// callback lists are empty again.
#[test]
fn sixteen_threads_of_every_operation_leave_nothing_behind() {
    let _serial = serial();
    const THREADS: usize = 16;
    let rounds = scaled(20, 1);
    let per_thread = scaled(60, 6);
    let key: Key<usize> = Key::new("i");
    for _ in 0..rounds {
        let (root, cancel_root) = with_cancel_cause(&Context::background());
        let (timed_root, cancel_timed) = with_timeout(&root, Duration::from_millis(5));
        let ledger = Ledger::new(THREADS * per_thread);
        let start = Arc::new(Barrier::new(THREADS + 1));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (root, timed_root, key) = (root.clone(), timed_root.clone(), key.clone());
                let (ledger, start) = (ledger.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut kept = Vec::new();
                    for i in 0..per_thread {
                        let id = t * per_thread + i;
                        let parent = if i % 2 == 0 { &root } else { &timed_root };
                        let (ctx, cancel, detached) = derive(parent, t + i, &key, id);
                        let ran = ledger.clone();
                        let stop: Box<dyn Fn() -> bool> = if i % 2 == 0 {
                            let a = after_func(&ctx, move || ran.record(id));
                            Box::new(move || a.stop())
                        } else {
                            let r = ctx.on_done(move || ran.record(id));
                            Box::new(move || r.stop())
                        };
                        if i % 5 == 0 && stop() {
                            ledger.record(id);
                        }
                        match i % 4 {
                            0 => cancel(),
                            1 => kept.push((ctx, cancel, detached)),
                            2 => {
                                // Dropped without cancel: a pending function
                                // keeps the context alive until it is done.
                                kept.push((ctx.clone(), cancel, detached));
                                drop(ctx);
                            }
                            _ => {
                                let waiter = {
                                    let ctx = ctx.clone();
                                    thread::spawn(move || ctx.wait_timeout(PATIENCE))
                                };
                                cancel();
                                assert!(ctx.wait_timeout(PATIENCE), "canceled, yet a wait stayed blocked");
                                assert!(waiter.join().unwrap(), "a second waiter stayed blocked");
                            }
                        }
                    }
                    assert!(root.wait_timeout(PATIENCE));
                    for (ctx, cancel, detached) in kept {
                        if !detached {
                            assert!(ctx.wait_timeout(PATIENCE), "a child of a canceled root stayed live");
                        }
                        cancel();
                        assert!(ctx.is_done());
                    }
                })
            })
            .collect();
        start.wait();
        thread::yield_now(); // lets the workers start; the race is the point, not an order
        cancel_root.cancel(Some(Cause::msg("server shutting down")));
        for w in workers {
            w.join().unwrap();
        }
        ledger.expect_each_once();
        assert_eq!(stats::children(&root), 0, "children left under the root");
        assert_eq!(stats::pending_callbacks(&root), 0, "callbacks left on the root");
        drop((root, timed_root, cancel_timed, cancel_root));
        assert_eq!(stats::pending_deadlines(), 0, "deadlines left in the timer");
    }
}

/// Threads of this process, from the kernel's count (0 under Miri, which
/// isolates the program from the file system).
fn os_threads() -> usize {
    if cfg!(miri) {
        return 0;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

/// Ten thousand after-funcs on one context all run, exactly once each, on
/// a handful of threads rather than one thread each.
#[test]
fn ten_thousand_after_funcs_run_once_each_on_a_few_threads() {
    let _serial = serial();
    let n = scaled(10_000, 50);
    let (ctx, cancel) = with_cancel(&Context::background());
    let ledger = Ledger::new(n);
    let stops: Vec<_> = (0..n)
        .map(|id| {
            let ledger = ledger.clone();
            after_func(&ctx, move || ledger.record(id))
        })
        .collect();
    assert_eq!(stats::pending_callbacks(&ctx), n);
    let (threads_before, pool_before) = (os_threads(), stats::after_func_threads());
    cancel.cancel();
    ledger.expect_each_once();
    assert!(stops.iter().all(|s| !s.stop()), "every function had started");
    // Generous: a loaded machine can stall a worker for a few milliseconds,
    // and each stall adds a thread. One thread per function would be 10,000.
    // Not under Miri, whose clock makes every function look slow.
    let grown = os_threads().saturating_sub(threads_before);
    let pool_grown = stats::after_func_threads().saturating_sub(pool_before);
    assert!(
        cfg!(miri) || pool_grown <= 32 && grown <= 32,
        "quick functions need few threads: pool grew by {pool_grown}, process by {grown}"
    );
}

/// A function that blocks holds up none of the others, and the pool grows
/// by about one thread per blocked function, not per function.
#[test]
fn a_blocked_after_func_does_not_hold_up_the_others() {
    let _serial = serial();
    let blocked = 3;
    let quick = scaled(1_000, 20);
    let (ctx, cancel) = with_cancel(&Context::background());
    let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let entered = Arc::new(AtomicUsize::new(0));
    for _ in 0..blocked {
        let (release, entered) = (release.clone(), entered.clone());
        // Registered first, so they are first in line.
        drop(after_func(&ctx, move || {
            entered.fetch_add(1, Ordering::SeqCst);
            let (lock, cv) = &*release;
            let mut go = lock.lock().unwrap();
            while !*go {
                go = cv.wait(go).unwrap();
            }
        }));
    }
    let ledger = Ledger::new(quick);
    for id in 0..quick {
        let ledger = ledger.clone();
        drop(after_func(&ctx, move || ledger.record(id)));
    }
    let pool_before = stats::after_func_threads();
    cancel.cancel();
    ledger.expect_each_once(); // while the blocked ones still block
    assert_eq!(
        entered.load(Ordering::SeqCst),
        blocked,
        "every blocking function started"
    );
    // Generous, as above; and not under Miri, whose clock makes every
    // function look stuck.
    let grown = stats::after_func_threads().saturating_sub(pool_before);
    assert!(
        cfg!(miri) || grown <= blocked + 16,
        "the pool grew by {grown} threads for {blocked} blocked functions"
    );
    let (lock, cv) = &*release;
    *lock.lock().unwrap() = true;
    cv.notify_all();
}

/// Cancelling a context from inside its own after-func and on-done
/// callbacks, and registering new ones there, neither deadlocks nor loses a call.
#[test]
fn callbacks_may_reenter_polyctx() {
    let _serial = serial();
    let (outer, cancel_outer) = with_cancel(&Context::background());
    let (inner, cancel_inner) = with_cancel(&outer);
    let ledger = Ledger::new(3);
    let (l0, l1, l2) = (ledger.clone(), ledger.clone(), ledger.clone());
    let inner2 = inner.clone();
    let _r = outer.on_done(move || {
        cancel_inner.cancel(); // already canceled by the walk: a no-op
        let l2 = l2.clone();
        let _ = after_func(&inner2, move || l2.record(2)); // already done: runs at once, on the pool
        l0.record(0);
    });
    let _a = after_func(&inner, move || l1.record(1));
    cancel_outer.cancel();
    ledger.expect_each_once();
}
