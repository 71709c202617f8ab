//! Shuttle explores thread interleavings of the real tree, timer, callback
//! and wait code (see `sync`): each test races the operations that meet on
//! one node (cancel, derive, drop, waiters, after-funcs, the timer firing,
//! a waiter firing its own deadline), checks what must hold in every
//! interleaving, then checks that nothing is left behind: no armed
//! deadline, callback or child, and every node freed (each test's tree
//! hangs under a value whose drop is counted).
//!
//! A schedule Shuttle cannot finish (a waiter nobody wakes) fails as a
//! deadlock. After one test fails, the core's statics may be left
//! mid-operation, so later tests in the run may fail as a consequence:
//! read the first failure. Run by `make test-shuttle` (`SHUTTLE_ITERATIONS` random and as
//! many PCT schedules per test) and, longer, by `make stress-shuttle`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use crate::sync::thread;
use crate::{
    after_func, cause, stats, timer, tree, with_cancel, with_cancel_cause, with_timeout, with_timeout_cause,
    with_value, Cause, Context, Error, Key,
};

/// Shuttle's atomics and the core's statics (the timer heap, the stripes)
/// belong to one execution at a time: the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

static ALIVE_KEY: LazyLock<Key<Alive>> = LazyLock::new(|| Key::new("alive"));

const HOUR: Duration = Duration::from_secs(3600);

/// Runs `scenario` under Shuttle's random scheduler and its PCT scheduler
/// (which finds bugs of a few ordered steps with a known probability).
fn explore(scenario: fn()) {
    let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let iterations = std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    shuttle::check_random(scenario, iterations);
    shuttle::check_pct(scenario, iterations, 3);
}

/// A value whose drop is counted: it lives as long as the nodes below it.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A root for one scenario's tree, and the count that says it was freed.
fn counted_root() -> (Context, Arc<AtomicUsize>) {
    let alive = Arc::new(AtomicUsize::new(1));
    let root = with_value(&Context::background(), &ALIVE_KEY, Alive(alive.clone()));
    (root, alive)
}

/// What every scenario leaves when its handles are gone.
fn assert_nothing_left(alive: &AtomicUsize) {
    assert_eq!(alive.load(Ordering::Relaxed), 0, "a node outlived its handles");
    assert_eq!(stats::pending_deadlines(), 0, "a deadline stayed armed");
    assert_eq!(stats::pending_after_funcs(), 0, "an after-func is still pending");
}

fn done_with(ctx: &Context) -> (Option<Error>, Option<Cause>) {
    (ctx.err(), cause(ctx))
}

/// Issue 10's race, as interleavings: a child armed with its own deadline
/// while its parent is cancelled and the timer fires.
#[test]
fn derive_with_deadline_against_cancel_and_timer() {
    explore(|| {
        let (root, alive) = counted_root();
        let (parent, cancel) = with_cancel(&root);
        drop(root);
        let deriver = {
            let parent = parent.clone();
            thread::spawn(move || with_timeout(&parent, HOUR))
        };
        let canceller = thread::spawn(move || cancel.cancel());
        let timer = thread::spawn(timer::fire_all);
        canceller.join().unwrap();
        timer.join().unwrap();
        let (child, cancel_child) = deriver.join().unwrap();

        assert!(child.is_done(), "a child of a cancelled parent is live");
        assert!(matches!(child.err(), Some(Error::Canceled | Error::DeadlineExceeded)));
        assert_eq!(stats::children(&parent), 0);
        drop((child, cancel_child, parent));
        assert_nothing_left(&alive);
    });
}

/// Linking, unlinking and the cancel walk on one chain: a grandchild is
/// derived and dropped uncancelled under a middle context that is dropped
/// while the root is cancelled.
#[test]
fn derive_and_drop_against_cancel() {
    explore(|| {
        let (root, alive) = counted_root();
        let (top, cancel_top) = with_cancel(&root);
        drop(root);
        let (middle, cancel_middle) = with_cancel(&top);
        let deriver = {
            let middle = middle.clone();
            thread::spawn(move || {
                let (grandchild, cancel_grandchild) = with_timeout(&middle, HOUR);
                let (kept, keep_cancel) = with_cancel(&middle);
                drop((grandchild, cancel_grandchild));
                (kept, keep_cancel)
            })
        };
        let canceller = thread::spawn(move || cancel_top.cancel());
        let dropper = thread::spawn(move || drop((middle, cancel_middle)));
        canceller.join().unwrap();
        dropper.join().unwrap();
        let (kept, keep_cancel) = deriver.join().unwrap();

        assert_eq!(kept.err(), Some(Error::Canceled));
        assert_eq!(
            stats::children(&top),
            0,
            "a child stayed linked under a cancelled parent"
        );
        drop((kept, keep_cancel, top));
        assert_nothing_left(&alive);
    });
}

/// Blocked threads and async tasks waiting on a context that is cancelled
/// while its deadline fires: every waiter wakes (else Shuttle reports a
/// deadlock), and no waiter stays registered.
#[test]
fn waiters_against_cancel_and_timer() {
    explore(|| {
        let (root, alive) = counted_root();
        let (ctx, cancel) = with_timeout(&root, HOUR);
        drop(root);
        let blocked = {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.wait())
        };
        let task = {
            let ctx = ctx.clone();
            thread::spawn(move || shuttle::future::block_on(ctx.done()))
        };
        let canceller = thread::spawn(move || cancel.cancel());
        let timer = thread::spawn(timer::fire_all);
        for t in [blocked, task, canceller, timer] {
            t.join().unwrap();
        }

        assert!(ctx.is_done());
        assert_eq!(stats::pending_callbacks(&ctx), 0, "a waiter stayed registered");
        drop(ctx);
        assert_nothing_left(&alive);
    });
}

/// A waiter that times out and leaves, against the cancel that would have
/// woken it: its slot is gone either way.
#[test]
fn waiter_leaving_against_cancel() {
    explore(|| {
        let (root, alive) = counted_root();
        let (ctx, cancel) = with_cancel(&root);
        drop(root);
        let leaver = {
            let ctx = ctx.clone();
            // Shuttle has no clock: an immediate timeout leaves at once.
            thread::spawn(move || ctx.wait_timeout(Duration::ZERO))
        };
        let canceller = thread::spawn(move || cancel.cancel());
        let woke = leaver.join().unwrap();
        canceller.join().unwrap();

        assert!(!woke || ctx.is_done(), "a waiter woke for a live context");
        assert_eq!(stats::pending_callbacks(&ctx), 0);
        drop(ctx);
        assert_nothing_left(&alive);
    });
}

/// An after-func runs exactly once unless `stop` returned true, whatever
/// the order of stop, cancel and the deadline firing.
#[test]
fn after_func_against_stop_cancel_and_timer() {
    explore(|| {
        let (root, alive) = counted_root();
        let (ctx, cancel) = with_timeout(&root, HOUR);
        drop(root);
        let ran = Arc::new(AtomicUsize::new(0));
        let af = {
            let ran = ran.clone();
            after_func(&ctx, move || {
                ran.fetch_add(1, Ordering::Relaxed);
            })
        };
        let on_done_ran = Arc::new(AtomicUsize::new(0));
        let registration = {
            let on_done_ran = on_done_ran.clone();
            ctx.on_done(move || {
                on_done_ran.fetch_add(1, Ordering::Relaxed);
            })
        };
        let stopper = thread::spawn(move || (af.stop(), registration.stop()));
        let canceller = thread::spawn(move || cancel.cancel());
        let timer = thread::spawn(timer::fire_all);
        let (af_stopped, on_done_stopped) = stopper.join().unwrap();
        canceller.join().unwrap();
        timer.join().unwrap();

        assert_eq!(ran.load(Ordering::Relaxed), usize::from(!af_stopped));
        assert_eq!(on_done_ran.load(Ordering::Relaxed), usize::from(!on_done_stopped));
        assert_eq!(stats::pending_callbacks(&ctx), 0);
        drop(ctx);
        assert_nothing_left(&alive);
    });
}

/// Three ways to end one context at once: a waiter firing its deadline
/// itself (`tree::expire`), the timer firing it, and the parent cancelled
/// with a cause; and a child derived meanwhile. One of them wins, and the
/// context and its child agree on which.
#[test]
fn expire_against_timer_and_parent_cause() {
    explore(|| {
        let (root, alive) = counted_root();
        let (parent, cancel_parent) = with_cancel_cause(&root);
        drop(root);
        let late = Cause::msg("late");
        let (ctx, cancel) = with_timeout_cause(&parent, HOUR, late.clone());
        let shutdown = Cause::msg("shutdown");
        let waiter = {
            let ctx = ctx.clone();
            thread::spawn(move || tree::expire(ctx.node.signal().expect("cancelable")))
        };
        let timer = thread::spawn(timer::fire_all);
        let canceller = {
            let shutdown = shutdown.clone();
            thread::spawn(move || cancel_parent.cancel(Some(shutdown)))
        };
        let deriver = {
            let ctx = ctx.clone();
            thread::spawn(move || with_cancel(&ctx))
        };
        for t in [waiter, timer, canceller] {
            t.join().unwrap();
        }
        let (child, cancel_child) = deriver.join().unwrap();

        match done_with(&ctx) {
            (Some(Error::DeadlineExceeded), Some(c)) => assert!(c.ptr_eq(&late)),
            (Some(Error::Canceled), Some(c)) => assert!(c.ptr_eq(&shutdown)),
            other => panic!("ctx ended as {other:?}"),
        }
        let (err, child_cause) = done_with(&child);
        assert_eq!(err, ctx.err(), "the child disagrees with its parent");
        assert!(child_cause.is_some_and(|c| c.ptr_eq(&cause(&ctx).unwrap())));
        drop((child, cancel_child, ctx, cancel, parent));
        assert_nothing_left(&alive);
    });
}

/// The timer pins a due node with `try_retain` while its last handle is
/// dropped: either the timer cancels it or the drop disarms it, and the
/// node is freed exactly once.
#[test]
fn last_drop_against_timer() {
    explore(|| {
        let (root, alive) = counted_root();
        let (ctx, cancel) = with_timeout(&root, HOUR);
        drop(root);
        let dropper = thread::spawn(move || drop((ctx, cancel)));
        let timer = thread::spawn(timer::fire_all);
        dropper.join().unwrap();
        timer.join().unwrap();
        assert_nothing_left(&alive);
    });
}

/// A contended parent's extra child lists (`node::Shards`): threads link
/// children into their own shards, cancel some, drop others uncancelled,
/// while the parent is cancelled; every child ends done and unlinked.
#[test]
fn sharded_parent_against_cancel() {
    explore(|| {
        let (root, alive) = counted_root();
        let (parent, cancel) = with_cancel(&root);
        drop(root);
        // Linked before the parent is sharded: it moves with the parent's list.
        let (early, cancel_early) = with_cancel(&parent);
        tree::shard_now(parent.node.signal().expect("cancelable"));
        let early_canceller = thread::spawn(move || cancel_early.cancel());
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let parent = parent.clone();
                thread::spawn(move || {
                    let (a, cancel_a) = with_cancel(&parent);
                    let (b, cancel_b) = with_timeout(&parent, HOUR);
                    if i == 0 {
                        cancel_a.cancel();
                    }
                    drop((a, cancel_a));
                    (b, cancel_b)
                })
            })
            .collect();
        let canceller = thread::spawn(move || cancel.cancel());
        canceller.join().unwrap();
        early_canceller.join().unwrap();
        assert!(early.is_done());
        drop(early);
        for worker in workers {
            let (b, cancel_b) = worker.join().unwrap();
            assert!(b.is_done(), "a child in a shard missed its parent's cancel");
            drop((b, cancel_b));
        }
        assert_eq!(stats::children(&parent), 0, "a child stayed in a shard");
        drop(parent);
        assert_nothing_left(&alive);
    });
}
