//! Running out of operating-system resources is an error, never a crash or
//! a hang: out of file descriptors, a wake descriptor cannot be made (and
//! says why) while every other operation goes on. In a forked child, whose
//! limits are its own.

#![cfg(not(miri))]

use std::time::Duration;

use polyctx::{after_func, with_cancel, with_timeout, Context, WakeFd};

#[test]
fn out_of_file_descriptors_a_wake_fd_is_an_error_and_contexts_still_work() {
    // SAFETY: the child only lowers its own limit, uses polyctx and std, and
    // leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(child).unwrap_or(99);
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child died: {status}");
    let code = libc::WEXITSTATUS(status);
    assert_eq!(code, 0, "step {code} failed in the child");
}

fn child() -> i32 {
    // Use every descriptor there is, under a low limit.
    let limit = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: sets this process's own limit from a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return 1;
    }
    let mut held = Vec::new();
    loop {
        match WakeFd::new() {
            Ok(fd) => held.push(fd),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(_) => return 2,
        }
        if held.len() > 1_000 {
            return 3; // the limit did not hold
        }
    }
    // Everything that needs no descriptor still works: derive, deadlines,
    // waits, after-funcs (threads need none).
    let (ctx, cancel) = with_cancel(&Context::background());
    let (timed, _c) = with_timeout(&ctx, Duration::from_millis(1));
    if !timed.wait_timeout(Duration::from_secs(10)) {
        return 4;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let _a = after_func(&ctx, move || tx.send(()).unwrap());
    cancel.cancel();
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        return 5;
    }
    // And a descriptor once one is free again.
    held.pop();
    if WakeFd::new().is_err() {
        return 6;
    }
    0
}
