//! The process-wide timer: one thread, entries freed on cancel and drop,
//! a million live deadlines, and deadlines in a forked child. One test
//! function, because the timer's queue length is global to the process.

use std::time::{Duration, Instant};

use polyctx::{stats, with_cancel, with_deadline, with_timeout, Context, Error};

const HOUR: Duration = Duration::from_secs(3600);
const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn timer() {
    entries_leave_on_cancel_and_drop();
    no_entry_when_not_needed();
    a_million_live_deadlines();
    deadlines_fire_in_order_and_never_early();
    deadlines_work_in_a_forked_child();
}

fn entries_leave_on_cancel_and_drop() {
    assert_eq!(stats::pending_deadlines(), 0);
    let (a, cancel_a) = with_timeout(&Context::background(), HOUR);
    let (b, cancel_b) = with_timeout(&Context::background(), HOUR);
    assert_eq!(stats::pending_deadlines(), 2);
    cancel_a.cancel();
    assert_eq!(stats::pending_deadlines(), 1, "cancel frees the entry at once");
    drop((b, cancel_b));
    assert_eq!(stats::pending_deadlines(), 0, "drop frees the entry at once");

    // Cancelling a parent disarms every descendant's timer.
    let (root, cancel_root) = with_cancel(&Context::background());
    let kids: Vec<_> = (0..100)
        .map(|i| with_timeout(&root, HOUR + Duration::from_secs(i)))
        .collect();
    assert_eq!(stats::pending_deadlines(), 100);
    cancel_root.cancel();
    assert_eq!(stats::pending_deadlines(), 0);
    drop((a, kids));

    // A fired deadline leaves no entry either.
    let (c, _cancel) = with_timeout(&Context::background(), Duration::from_millis(10));
    assert!(c.wait_timeout(PATIENCE));
    assert_eq!(stats::pending_deadlines(), 0);
}

fn no_entry_when_not_needed() {
    // Past deadlines are exceeded at creation and arm nothing.
    let (past, _c) = with_deadline(&Context::background(), Instant::now() - Duration::from_secs(1));
    assert_eq!(past.err(), Some(Error::DeadlineExceeded));
    // A deadline later than the parent's needs no timer of its own.
    let (parent, _cp) = with_timeout(&Context::background(), HOUR);
    let (later, _cl) = with_timeout(&parent, 2 * HOUR);
    assert_eq!(later.deadline(), parent.deadline());
    assert!(later.to_string().ends_with("]).WithCancel"), "{later}");
    // A child of a done parent arms nothing.
    let (done, cancel) = with_cancel(&Context::background());
    cancel.cancel();
    let (child, _cc) = with_timeout(&done, HOUR);
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(stats::pending_deadlines(), 1, "only `parent` is armed");
}

fn a_million_live_deadlines() {
    let base = stats::pending_deadlines();
    let (root, cancel_root) = with_cancel(&Context::background());
    let mut live: Vec<_> = (0..1_000_000u64)
        .map(|i| with_timeout(&root, HOUR + Duration::from_nanos(i * 7919 % 1_000_003)))
        .collect();
    assert_eq!(stats::pending_deadlines(), base + 1_000_000);
    live.truncate(500_000);
    assert_eq!(stats::pending_deadlines(), base + 500_000);
    for (_, cancel) in live.iter().step_by(2) {
        cancel.cancel();
    }
    assert_eq!(stats::pending_deadlines(), base + 250_000);
    cancel_root.cancel();
    assert_eq!(stats::pending_deadlines(), base);
    assert!(live.iter().all(|(c, _)| c.err() == Some(Error::Canceled)));
}

fn deadlines_fire_in_order_and_never_early() {
    let start = Instant::now();
    let ctxs: Vec<_> = (0..200u64)
        .map(|i| {
            let d = Duration::from_millis((i * 37) % 100 + 1);
            (start + d, with_deadline(&Context::background(), start + d))
        })
        .collect();
    for (deadline, (c, _)) in &ctxs {
        assert!(c.wait_timeout(PATIENCE), "a deadline never fired");
        assert!(Instant::now() >= *deadline, "fired before its deadline");
        assert_eq!(c.err(), Some(Error::DeadlineExceeded));
    }
}

fn deadlines_work_in_a_forked_child() {
    // Armed before the fork: the child inherits it without the thread.
    let (inherited, _keep) = with_timeout(&Context::background(), Duration::from_millis(100));
    // SAFETY: the child only uses polyctx and then `_exit`s; glibc makes
    // malloc usable after fork, and polyctx's fork handlers release its timer lock.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let (fresh, _c) = with_timeout(&Context::background(), Duration::from_millis(20));
        let ok = fresh.wait_timeout(PATIENCE)
            && fresh.err() == Some(Error::DeadlineExceeded)
            && inherited.wait_timeout(PATIENCE)
            && inherited.err() == Some(Error::DeadlineExceeded);
        // SAFETY: ends the child without running the parent's test harness.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "deadlines failed in the forked child"
    );
    assert!(inherited.wait_timeout(PATIENCE));
}
