//! What servers do with many threads: derive from one shared, server-lifetime
//! parent on every thread at once; and run many after-funcs on one context.
//! bench/go times Go on the same shapes.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use polyctx::{after_func, stats, with_cancel, Context};
use tokio_util::sync::CancellationToken;

use crate::harness::{emit, emit_with_p99, median, percentile};

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
        emit_median_p99("scaling", &op, "polyctx", ours);
        emit_median_p99("scaling", &op, "tokio-util", peer);
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
    emit_median_p99("rust", &format!("{op}: cancel returns"), "polyctx", returned);
    emit_median_p99("rust", &format!("{op}: all have run"), "polyctx", all_ran);
    emit(
        "rust",
        &format!("{op}: pool threads"),
        "polyctx",
        "count",
        median(threads),
    );
}

/// How late code waiting on a deadline runs: from the deadline to the
/// waiting code running again, p50/p99/max over `count` deadlines 2 to 3.8 ms
/// ahead. `load` names the machine's state: bench/run.py runs this mode
/// idle and again under bench/load.py (CPU hogs and a parallel build), the
/// same load for every language. Beside each polyctx wait, its floor: the
/// same thread sleeping until the same instant (`thread::sleep`), and for a
/// task, tokio's own timer.
pub fn lateness(load: &str, quick: bool) {
    let count = if quick { 50 } else { 300 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut rows: [(&str, &str, Vec<f64>); 4] = [
        ("rust: thread blocked in ctx.wait()", "polyctx", Vec::new()),
        ("rust: thread blocked in ctx.wait()", "thread::sleep", Vec::new()),
        ("rust: task awaiting ctx.done() (tokio)", "polyctx", Vec::new()),
        (
            "rust: task awaiting ctx.done() (tokio)",
            "tokio::time::sleep_until",
            Vec::new(),
        ),
    ];
    for i in 0..count {
        let ahead = Duration::from_micros(2_000 + (i % 7) * 300);
        let (ctx, _cancel) = polyctx::with_timeout(&Context::background(), ahead);
        let deadline = ctx.deadline().unwrap();
        ctx.wait();
        rows[0].2.push(late(deadline));
        let deadline = Instant::now() + ahead;
        std::thread::sleep(deadline - Instant::now());
        rows[1].2.push(late(deadline));
        let (ctx, _cancel) = polyctx::with_timeout(&Context::background(), ahead);
        let deadline = ctx.deadline().unwrap();
        rows[2].2.push(rt.block_on(async {
            ctx.done().await;
            late(deadline)
        }));
        let deadline = Instant::now() + ahead;
        rows[3].2.push(rt.block_on(async {
            tokio::time::sleep_until(deadline.into()).await;
            late(deadline)
        }));
    }
    for (op, implementation, samples) in &mut rows {
        emit_lateness(op, implementation, load, samples);
    }
}

/// The median of `samples` (nanoseconds per operation) and their p99.
fn emit_median_p99(area: &str, op: &str, implementation: &str, samples: Vec<f64>) {
    let p99 = percentile(&samples, 0.99);
    emit_with_p99(area, op, implementation, "ns_per_op", median(samples), p99);
}

/// Nanoseconds from `deadline` to now.
fn late(deadline: Instant) -> f64 {
    Instant::now().saturating_duration_since(deadline).as_nanos() as f64
}

/// One lateness row: p50 as the value, with p99 and max.
fn emit_lateness(op: &str, implementation: &str, load: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        r#"{{"area":"lateness","op":"{op}","impl":"{implementation}","unit":"ns_per_op","load":"{load}","value":{:.0},"p99":{:.0},"max":{:.0}}}"#,
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}
