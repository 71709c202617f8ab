//! The article's patterns as helpers: groups, retries, sleeps, each also
//! cancelled in the middle.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use polyctx::patterns::{self, Backoff, Failure, GiveUp, Next, RetryError};
use polyctx::{cause, with_cancel, with_cancel_cause, with_timeout, Cause, Context, Error};

const PATIENCE: Duration = Duration::from_secs(20);

struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

#[test]
fn sleep_runs_its_course_or_ends_with_the_context() {
    let bg = Context::background();
    assert_eq!(patterns::sleep(&bg, Duration::from_millis(5)), Ok(()));
    let (ctx, cancel) = with_cancel(&bg);
    let sleeper = {
        let ctx = ctx.clone();
        thread::spawn(move || patterns::sleep(&ctx, PATIENCE))
    };
    cancel.cancel();
    assert_eq!(sleeper.join().unwrap(), Err(Error::Canceled));

    assert_eq!(block_on(patterns::sleep_async(&bg, Duration::from_millis(5))), Ok(()));
    let (short, _c) = with_timeout(&bg, Duration::from_millis(5));
    let started = Instant::now();
    assert_eq!(
        block_on(patterns::sleep_async(&short, PATIENCE)),
        Err(Error::DeadlineExceeded)
    );
    assert!(started.elapsed() < PATIENCE / 2);
}

#[test]
fn waiting_for_anything_stops_with_the_context() {
    let (ctx, cancel) = with_cancel(&Context::background());
    cancel.cancel();
    let never = std::future::pending::<()>();
    assert_eq!(block_on(patterns::with_context(&ctx, never)), Err(Error::Canceled));
    let ready = std::future::ready(7);
    assert_eq!(block_on(patterns::with_context(&Context::background(), ready)), Ok(7));
}

fn no_jitter() -> Backoff {
    Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        multiplier: 2.0,
        jitter: 0.0,
        max_attempts: Some(5),
        attempt_time: None,
    }
}

#[test]
fn backoff_doubles_caps_jitters_and_counts() {
    let b = no_jitter();
    let bg = Context::background();
    let waits: Vec<_> = (0..5)
        .map(|n| match b.next_with(&bg, n, 0.5) {
            Next::Wait(d) => d.as_millis(),
            Next::GiveUp(g) => panic!("{g}"),
        })
        .collect();
    assert_eq!(waits, [0, 10, 20, 40, 50]);
    assert!(matches!(b.next_with(&bg, 5, 0.5), Next::GiveUp(GiveUp::Attempts)));
    let jittery = Backoff {
        jitter: 0.5,
        ..no_jitter()
    };
    assert!(matches!(jittery.next_with(&bg, 1, 0.0), Next::Wait(d) if d == Duration::from_millis(10)));
    assert!(
        matches!(jittery.next_with(&bg, 1, 0.999), Next::Wait(d) if d > Duration::from_millis(4) && d < Duration::from_millis(6))
    );
}

#[test]
fn backoff_settings_are_checked_and_nan_never_panics() {
    assert_eq!(no_jitter().check(), Ok(()));
    for bad in [
        Backoff {
            multiplier: f64::NAN,
            ..no_jitter()
        },
        Backoff {
            multiplier: 0.5,
            ..no_jitter()
        },
        Backoff {
            jitter: 1.5,
            ..no_jitter()
        },
        Backoff {
            jitter: f64::NAN,
            ..no_jitter()
        },
        Backoff {
            max_attempts: Some(0),
            ..no_jitter()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
    let bg = Context::background();
    // Unchecked settings still give an answer, never a panic.
    let nan = Backoff {
        multiplier: f64::NAN,
        jitter: f64::NAN,
        ..no_jitter()
    };
    assert!(matches!(nan.next_with(&bg, 2, f64::NAN), Next::Wait(d) if d == Duration::from_millis(10)));
    let zero = Backoff {
        initial: Duration::ZERO,
        max_attempts: None,
        ..no_jitter()
    };
    assert!(matches!(zero.next_with(&bg, u32::MAX, 0.0), Next::Wait(d) if d.is_zero()));
}

#[test]
fn retry_succeeds_fails_fatally_or_runs_out_of_attempts() {
    let bg = Context::background();
    let calls = AtomicUsize::new(0);
    let r: Result<&str, RetryError<&str>> = patterns::retry(&bg, &no_jitter(), |n| {
        calls.fetch_add(1, Ordering::SeqCst);
        if n < 3 {
            Err(Failure::Retry("flaky"))
        } else {
            Ok("done")
        }
    });
    assert_eq!(r.unwrap(), "done");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let r: Result<(), _> = patterns::retry(&bg, &no_jitter(), |_| Err(Failure::Fatal("bad request")));
    assert!(matches!(r, Err(RetryError::Fatal("bad request"))));

    let r: Result<(), _> = patterns::retry(&bg, &no_jitter(), |_| Err(Failure::Retry("503")));
    match r {
        Err(RetryError::GaveUp {
            why: GiveUp::Attempts,
            attempts: 5,
            last: Some("503"),
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn retry_never_starts_an_attempt_the_budget_cannot_fit() {
    let (ctx, _c) = with_timeout(&Context::background(), Duration::from_millis(200));
    let slow = Backoff {
        attempt_time: Some(Duration::from_secs(1)),
        ..no_jitter()
    };
    let r: Result<(), RetryError<&str>> = patterns::retry(&ctx, &slow, |_| panic!("must not start"));
    match r {
        Err(RetryError::GaveUp {
            why: GiveUp::Deadline,
            attempts: 0,
            last: None,
        }) => {}
        other => panic!("{other:?}"),
    }
    // One budget across attempts: the waits do not outlive it.
    let (ctx, _c) = with_timeout(&Context::background(), Duration::from_millis(100));
    let patient = Backoff {
        max_attempts: None,
        ..no_jitter()
    };
    let started = Instant::now();
    let r: Result<(), RetryError<&str>> = patterns::retry(&ctx, &patient, |_| Err(Failure::Retry("again")));
    assert!(
        matches!(
            r,
            Err(RetryError::GaveUp {
                why: GiveUp::Deadline,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(started.elapsed() < PATIENCE / 2);
}

#[test]
fn retry_stops_waiting_the_moment_the_context_is_canceled() {
    let (ctx, cancel) = with_cancel_cause(&Context::background());
    let long = Backoff {
        initial: PATIENCE,
        max: PATIENCE,
        ..no_jitter()
    };
    let (tx, rx) = mpsc::channel();
    let worker = {
        let ctx = ctx.clone();
        thread::spawn(move || {
            patterns::retry(&ctx, &long, |_| {
                tx.send(()).unwrap();
                Err::<(), _>(Failure::Retry("down"))
            })
        })
    };
    rx.recv().unwrap(); // the first attempt failed; the worker now waits
    cancel.cancel(Some(Cause::msg("client went away")));
    match worker.join().unwrap() {
        Err(RetryError::GaveUp {
            why: GiveUp::Canceled(c),
            attempts: 1,
            last: Some("down"),
        }) => {
            assert_eq!(c.to_string(), "client went away");
        }
        other => panic!("{other:?}"),
    }
}

#[derive(Debug, PartialEq)]
struct Boom(&'static str);

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[test]
fn a_group_stops_at_the_first_error_and_leaves_nothing_running() {
    let bg = Context::background();
    let stopped_early = AtomicUsize::new(0);
    let mut group_ctx = None;
    let r = patterns::scope(&bg, None, |g| {
        group_ctx = Some(g.context().clone());
        for _ in 0..4 {
            g.spawn(|ctx| {
                // Slow work that listens to its context.
                if ctx.wait_timeout(PATIENCE) {
                    stopped_early.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            });
        }
        g.spawn(|_| Err(Boom("backend down")));
    });
    assert_eq!(r, Err(Boom("backend down")));
    assert_eq!(
        stopped_early.load(Ordering::SeqCst),
        4,
        "the first error canceled the others"
    );
    let group_ctx = group_ctx.unwrap();
    assert_eq!(cause(&group_ctx).unwrap().to_string(), "backend down");

    let ok: Result<u8, Boom> = patterns::scope(&bg, None, |g| {
        g.spawn(|_| Ok(()));
        7
    });
    assert_eq!(ok, Ok(7));
}

#[test]
fn a_group_limit_bounds_how_many_run_at_once() {
    let running = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let r: Result<(), Boom> = patterns::scope(&Context::background(), Some(2), |g| {
        for _ in 0..8 {
            g.spawn(|_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                thread::yield_now();
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            });
        }
    });
    assert_eq!(r, Ok(()));
    assert!(peak.load(Ordering::SeqCst) <= 2);
}

#[test]
fn futures_join_under_one_context() {
    let bg = Context::background();
    let out: Result<Vec<u32>, Boom> = block_on(patterns::join_all(
        &bg,
        (0..3).map(|i| move |_ctx: Context| async move { Ok(i * 10) }),
    ));
    assert_eq!(out, Ok(vec![0, 10, 20]));

    // The first error cancels the others, which stop early.
    type Task = Box<dyn FnOnce(Context) -> std::pin::Pin<Box<dyn Future<Output = Result<u32, Boom>>>>>;
    let tasks: Vec<Task> = vec![
        Box::new(|ctx: Context| {
            Box::pin(async move {
                ctx.done().await;
                Ok(1)
            })
        }),
        Box::new(|_ctx: Context| Box::pin(async move { Err(Boom("nope")) })),
    ];
    let out = block_on(patterns::join_all(&bg, tasks));
    assert_eq!(out, Err(Boom("nope")));
}
