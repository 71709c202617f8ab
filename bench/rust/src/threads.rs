//! What servers do with many threads: derive from one shared, server-lifetime
//! parent on every thread at once; and run many after-funcs on one context.
//! bench/go times Go on the same shapes.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use polyctx::{after_func, stats, with_cancel, Context};
use tokio_util::sync::CancellationToken;

use crate::harness::{emit, median};

pub const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

/// Wall time per operation (all threads together) of `per_thread`
/// operations on each of `threads` threads started at once.
fn aggregate(threads: usize, per_thread: usize, op: impl Fn() + Send + Sync + 'static) -> f64 {
    let op = Arc::new(op);
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (op, start) = (op.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..per_thread {
                    op();
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for w in workers {
        w.join().unwrap();
    }
    began.elapsed().as_nanos() as f64 / (threads * per_thread) as f64
}

/// Many threads deriving from, and cancelling children of, one shared
/// cancelable parent: the shape of a server whose requests all hang off a
/// server-lifetime context. Reported as wall time per operation across all
/// threads (lower is better; ideal scaling divides it by the core count).
pub fn shared_parent(quick: bool) {
    let total = if quick { 200_000 } else { 2_000_000 };
    let reps = if quick { 3 } else { 5 };
    let (parent, _keep) = with_cancel(&Context::background());
    let token = CancellationToken::new();
    for threads in THREADS {
        let per_thread = total / threads;
        let mut ours = Vec::new();
        let mut peer = Vec::new();
        for _ in 0..reps {
            let p = parent.clone();
            ours.push(aggregate(threads, per_thread, move || {
                let (c, cancel) = with_cancel(&p);
                cancel.cancel();
                black_box(c);
            }));
            let t = token.clone();
            peer.push(aggregate(threads, per_thread, move || {
                let c = t.child_token();
                c.cancel();
                black_box(c);
            }));
        }
        let op = format!("shared parent derive+cancel, {threads} threads");
        emit("scaling", &op, "polyctx", "ns_per_op", median(ours));
        emit("scaling", &op, "tokio-util", "ns_per_op", median(peer));
    }
}

/// `count` after-funcs on one context, then one cancel: how long the cancel
/// takes to return, how long until every function has run, and how many
/// threads the pool has afterwards.
pub fn after_funcs(quick: bool) {
    let count = 10_000;
    let reps = if quick { 3 } else { 7 };
    let (mut returned, mut all_ran, mut threads) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (ctx, cancel) = with_cancel(&Context::background());
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let ran = Arc::new(AtomicUsize::new(0));
        let stops: Vec<_> = (0..count)
            .map(|_| {
                let (ran, done) = (ran.clone(), done.clone());
                after_func(&ctx, move || {
                    if ran.fetch_add(1, Ordering::AcqRel) + 1 == count {
                        *done.0.lock().unwrap() = true;
                        done.1.notify_one();
                    }
                })
            })
            .collect();
        let began = Instant::now();
        cancel.cancel();
        returned.push(began.elapsed().as_nanos() as f64);
        let (lock, cv) = &*done;
        let guard = cv
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(60), |d| !*d)
            .unwrap()
            .0;
        assert!(*guard, "after-funcs did not all run within a minute");
        all_ran.push(began.elapsed().as_nanos() as f64);
        threads.push(stats::after_func_threads() as f64);
        drop(stops);
    }
    let op = format!("{}k after-funcs", count / 1000);
    emit(
        "rust",
        &format!("{op}: cancel returns"),
        "polyctx",
        "ns_per_op",
        median(returned),
    );
    emit(
        "rust",
        &format!("{op}: all have run"),
        "polyctx",
        "ns_per_op",
        median(all_ran),
    );
    emit(
        "rust",
        &format!("{op}: pool threads"),
        "polyctx",
        "count",
        median(threads),
    );
}

/// How late code waiting on a deadline runs: from the deadline to the
/// waiting thread running again, p50/p99/max over `count` deadlines, idle
/// and with every core kept busy by hog threads. The peer is the operating
/// system's own floor: `thread::sleep` until the same instant.
pub fn lateness(quick: bool) {
    let count = if quick { 50 } else { 300 };
    for loaded in [false, true] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hogs: Vec<_> = (0..if loaded { 2 * cores() } else { 0 })
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for i in 0..count {
            let ahead = Duration::from_micros(2_000 + (i % 7) * 300);
            let (ctx, _cancel) = polyctx::with_timeout(&Context::background(), ahead);
            let deadline = ctx.deadline().unwrap();
            ctx.wait();
            ours.push(Instant::now().saturating_duration_since(deadline).as_nanos() as f64);
            let deadline = Instant::now() + ahead;
            std::thread::sleep(deadline - Instant::now());
            floor.push(Instant::now().saturating_duration_since(deadline).as_nanos() as f64);
        }
        stop.store(true, Ordering::Relaxed);
        for h in hogs {
            h.join().unwrap();
        }
        let load = if loaded { "loaded" } else { "idle" };
        for (name, samples) in [("polyctx", &mut ours), ("thread::sleep", &mut floor)] {
            samples.sort_by(f64::total_cmp);
            let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
            emit(
                "lateness",
                &format!("rust deadline to code, {load}, p50"),
                name,
                "ns_per_op",
                pick(0.5),
            );
            emit(
                "lateness",
                &format!("rust deadline to code, {load}, p99"),
                name,
                "ns_per_op",
                pick(0.99),
            );
            emit(
                "lateness",
                &format!("rust deadline to code, {load}, max"),
                name,
                "ns_per_op",
                pick(1.0),
            );
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
