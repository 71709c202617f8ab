//! `fork()` while other threads are inside polyctx: the child must be able
//! to use the contexts it inherited and make new ones, whatever the other
//! threads were doing at the instant of the fork. A test binary of its own:
//! forking a process whose other threads are the test harness's is fine
//! with glibc, but keeping it alone keeps what the child inherits simple.

#![cfg(not(miri))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use polyctx::{after_func, with_cancel, with_cancel_cause, with_timeout, with_value, Cause, Context, Key};

/// How long a child may take before it counts as hung.
const CHILD_PATIENCE: Duration = Duration::from_secs(10);

/// What a child does with what it inherited; its exit status says which
/// step failed (0: all worked).
fn child_work(shared: &Context) -> i32 {
    // An inherited context: derive under it, cancel it, see it done.
    let (mine, cancel) = with_cancel(shared);
    cancel.cancel();
    if !mine.wait_timeout(CHILD_PATIENCE) {
        return 2;
    }
    // A new deadline needs a timer thread the child does not have yet.
    let (timed, _c) = with_timeout(&Context::background(), Duration::from_millis(1));
    if !timed.wait_timeout(CHILD_PATIENCE) {
        return 3;
    }
    // An after-func needs a pool thread, which the child does not have either.
    let (tx, rx) = mpsc::channel();
    let (ctx, cancel) = with_cancel(shared);
    let _a = after_func(&ctx, move || tx.send(()).unwrap());
    cancel.cancel();
    if rx.recv_timeout(CHILD_PATIENCE).is_err() {
        return 4;
    }
    0
}

#[test]
fn forking_while_other_threads_derive_and_cancel_leaves_a_usable_child() {
    let forks = if std::env::var_os("POLYCTX_STRESS").is_some() {
        2_000
    } else {
        200
    };
    let (shared, cancel_shared) = with_cancel_cause(&Context::background());
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicUsize::new(0));
    let key: Key<u32> = Key::new("k");
    let churners: Vec<_> = (0..3)
        .map(|t| {
            let (shared, stop, ops, key) = (shared.clone(), stop.clone(), ops.clone(), key.clone());
            thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let (a, cancel_a) = with_cancel(&shared);
                    let (b, cancel_b) = with_timeout(&with_value(&a, &key, i), Duration::from_micros(50));
                    let _f = after_func(&b, || {});
                    if (i + t) % 3 == 0 {
                        b.wait_timeout(Duration::from_micros(100));
                    }
                    cancel_b.cancel();
                    cancel_a.cancel();
                    ops.fetch_add(1, Ordering::Relaxed);
                    i = i.wrapping_add(1);
                }
            })
        })
        .collect();
    while ops.load(Ordering::Relaxed) < 1_000 {
        thread::yield_now();
    }

    let mut failures = Vec::new();
    for n in 0..forks {
        // SAFETY: the child only runs `child_work` (polyctx and std, which
        // glibc's fork keeps usable) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = child_work(&shared);
            // SAFETY: ends the child without running the parent's atexit
            // handlers or test harness teardown.
            unsafe { libc::_exit(code) };
        }
        let started = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child, without blocking.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if done == pid {
                break;
            }
            if started.elapsed() > CHILD_PATIENCE {
                // SAFETY: kills and reaps our own hung child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                status = -1;
                break;
            }
            thread::sleep(Duration::from_millis(1)); // polling a child's exit, bounded above
        }
        if status != 0 {
            let what = match status {
                -1 => "hung".to_string(),
                s if libc::WIFEXITED(s) => format!("failed step {}", libc::WEXITSTATUS(s)),
                s => format!("died with signal {}", libc::WTERMSIG(s)),
            };
            failures.push(format!("fork {n}: {what}"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in churners {
        c.join().unwrap();
    }
    cancel_shared.cancel(Some(Cause::msg("done")));
    assert!(
        failures.is_empty(),
        "{} of {forks} children failed: {failures:?}",
        failures.len()
    );
}
