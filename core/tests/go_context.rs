//! Go's own context tests (context_test.go and x_test.go in Go's `context`
//! package), rewritten for polyctx with the same intent. Each test names the
//! Go test it follows. Go tests with no Rust counterpart, and why:
//! - TestWithValueChecksKey, TestInvalidDerivedFail: nil parents and
//!   non-comparable keys cannot be expressed with `&Context` and `Key<T>`.
//! - TestCustomContext*: `Context` is one concrete type; there are no custom
//!   implementations to propagate through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

use polyctx::{
    after_func, cause, stats, with_cancel, with_cancel_cause, with_deadline, with_deadline_cause, with_timeout,
    with_timeout_cause, with_value, without_cancel, Cause, Context, Error, Key,
};

/// Long enough that no test ever sees it expire.
const FOREVER: Duration = Duration::from_secs(3600);
/// How long a test waits for something that must happen; generous for
/// loaded CI machines, and only ever spent on failure.
const PATIENCE: Duration = Duration::from_secs(20);

fn assert_live(ctx: &Context, name: &str) {
    assert!(!ctx.is_done(), "{name} is done, want live");
    assert_eq!(ctx.err(), None, "{name}.err()");
    assert!(cause(ctx).is_none(), "{name} has a cause while live");
}

fn assert_done(ctx: &Context, want: Error, name: &str) {
    assert!(ctx.is_done(), "{name} is live, want done");
    assert_eq!(ctx.err(), Some(want), "{name}.err()");
}

fn msg(c: &Option<Cause>) -> String {
    c.as_ref().map_or("<none>".into(), |c| c.to_string())
}

// Go: TestBackground
#[test]
fn background() {
    let c = Context::background();
    assert_live(&c, "Background");
    assert_eq!(c.deadline(), None);
    assert_eq!(c.to_string(), "context.Background");
    assert!(!c.wait_timeout(Duration::from_millis(10)));
}

// Go: TestTODO
#[test]
fn todo() {
    let c = Context::todo();
    assert_live(&c, "TODO");
    assert_eq!(c.deadline(), None);
    assert_eq!(c.to_string(), "context.TODO");
}

// Go: TestWithCancel
#[test]
fn with_cancel_cancels_every_descendant() {
    let (c1, cancel) = with_cancel(&Context::background());
    assert_eq!(c1.to_string(), "context.Background.WithCancel");
    let (c2, _keep2) = with_cancel(&c1);
    let (c3, _keep3) = with_cancel(&c2);
    let leaf = with_value(&c3, &Key::new("k"), 1u8);
    for (c, n) in [(&c1, "c1"), (&c2, "c2"), (&c3, "c3"), (&leaf, "leaf")] {
        assert_live(c, n);
    }
    cancel.cancel();
    for (c, n) in [(&c1, "c1"), (&c2, "c2"), (&c3, "c3"), (&leaf, "leaf")] {
        assert_done(c, Error::Canceled, n);
        assert!(c.wait_timeout(Duration::ZERO), "{n}: wait after cancel");
    }
}

// Go: TestParentFinishesChild (context_test.go)
#[test]
fn parent_finishes_child() {
    let (parent, cancel) = with_cancel(&Context::background());
    let (cancel_child, _stop1) = with_cancel(&parent);
    let value_child = with_value(&parent, &Key::new("key"), "value");
    let (timer_child, _stop2) = with_timeout(&value_child, FOREVER);
    let after = after_func(&parent, || {});
    for (c, n) in [
        (&parent, "parent"),
        (&cancel_child, "cancel"),
        (&value_child, "value"),
        (&timer_child, "timer"),
    ] {
        assert_live(c, n);
    }
    // Both cancelable children hang directly off the parent (the timer child
    // through the value context), plus the after-func.
    assert_eq!(stats::children(&parent), 2);
    assert_eq!(stats::pending_callbacks(&parent), 1);

    cancel.cancel();
    assert_eq!(stats::children(&parent), 0, "cancel must clear the child list");
    assert_eq!(stats::pending_callbacks(&parent), 0);
    for (c, n) in [
        (&parent, "parent"),
        (&cancel_child, "cancel"),
        (&value_child, "value"),
        (&timer_child, "timer"),
    ] {
        assert_done(c, Error::Canceled, n);
    }
    assert!(!after.stop(), "after-func started by the cancel");

    let precanceled = with_value(&parent, &Key::new("key"), "value");
    assert_done(&precanceled, Error::Canceled, "precanceled child");
}

// Go: TestChildFinishesFirst (context_test.go)
#[test]
fn child_finishes_first() {
    let (cancelable, _stop) = with_cancel(&Context::background());
    // Background has no child list: nothing can cancel its children.
    for (parent, linked) in [(Context::background(), 0), (cancelable, 1)] {
        let (child, cancel) = with_cancel(&parent);
        assert_live(&parent, "parent");
        assert_live(&child, "child");
        assert_eq!(stats::children(&parent), linked);

        cancel.cancel();
        assert_eq!(stats::children(&parent), 0, "child's cancel must unlink it");
        assert_done(&child, Error::Canceled, "child");
        assert_live(&parent, "parent");
    }
}

// Go: TestCancelRemoves (context_test.go)
#[test]
fn cancel_removes_child_from_parent() {
    let (ctx, _keep) = with_cancel(&Context::background());
    assert_eq!(stats::children(&ctx), 0);
    let (_c, cancel) = with_cancel(&ctx);
    assert_eq!(stats::children(&ctx), 1);
    cancel.cancel();
    assert_eq!(stats::children(&ctx), 0);

    let (_t, cancel) = with_timeout(&ctx, FOREVER);
    assert_eq!(stats::children(&ctx), 1);
    cancel.cancel();
    assert_eq!(stats::children(&ctx), 0);

    let stop = after_func(&ctx, || {});
    assert_eq!(stats::pending_callbacks(&ctx), 1);
    assert!(stop.stop());
    assert_eq!(stats::pending_callbacks(&ctx), 0);
}

// Go: testDeadline and TestDeadline
#[test]
fn deadline_expires() {
    let start = Instant::now();
    let (c, _cancel) = with_deadline(&Context::background(), start + Duration::from_millis(50));
    assert!(c.to_string().starts_with("context.Background.WithDeadline(["), "{c}");
    assert!(c.wait_timeout(PATIENCE), "deadline never fired");
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "fired early: {:?}",
        start.elapsed()
    );
    assert_done(&c, Error::DeadlineExceeded, "c");

    // A later deadline under an earlier one is the earlier one.
    let (o, _co) = with_deadline(&Context::background(), Instant::now() + Duration::from_millis(50));
    let (c, _cc) = with_deadline(&o, Instant::now() + FOREVER);
    assert_eq!(c.deadline(), o.deadline());
    assert!(c.wait_timeout(PATIENCE));
    assert_done(&c, Error::DeadlineExceeded, "inherited deadline");

    // An earlier deadline under a later one is its own.
    let (o, _co) = with_deadline(&Context::background(), Instant::now() + FOREVER);
    let (c, _cc) = with_deadline(&o, Instant::now() + Duration::from_millis(50));
    assert!(c.deadline() < o.deadline());
    assert!(c.wait_timeout(PATIENCE));
    assert_done(&c, Error::DeadlineExceeded, "own earlier deadline");
    assert_live(&o, "outer");

    // A deadline already past is exceeded at creation.
    let (c, _cc) = with_deadline(&Context::background(), Instant::now() - Duration::from_secs(1));
    assert_done(&c, Error::DeadlineExceeded, "past deadline");
    let (c, _cc) = with_timeout(&Context::background(), Duration::ZERO);
    assert_done(&c, Error::DeadlineExceeded, "zero timeout");
}

// Go: TestTimeout
#[test]
fn timeout_expires() {
    let start = Instant::now();
    let (c, _cancel) = with_timeout(&Context::background(), Duration::from_millis(50));
    let deadline = c.deadline().expect("a deadline");
    assert!(deadline >= start + Duration::from_millis(50) && deadline <= Instant::now() + Duration::from_millis(50));
    assert!(c.wait_timeout(PATIENCE));
    assert!(Instant::now() >= deadline);
    assert_done(&c, Error::DeadlineExceeded, "c");
    assert_eq!(
        cause(&c).and_then(|c| c.as_context_error()),
        Some(Error::DeadlineExceeded)
    );
}

// Go: TestCanceledTimeout
#[test]
fn canceled_timeout_is_canceled() {
    let (c, _keep) = with_timeout(&Context::background(), FOREVER);
    let (o, cancel) = with_cancel(&c);
    cancel.cancel();
    assert_done(&o, Error::Canceled, "o");
    assert_live(&c, "c");

    let (c, cancel) = with_timeout(&Context::background(), FOREVER);
    cancel.cancel();
    assert_done(&c, Error::Canceled, "canceled timeout");
}

// Go: TestValues
#[test]
fn values_shadow_by_nearest_ancestor() {
    let k1: Key<String> = Key::new("k1");
    let k2: Key<String> = Key::new("k2");
    let k3: Key<String> = Key::new("k3");
    let same_name: Key<String> = Key::new("k1");
    let check = |c: &Context, want: [Option<&str>; 3]| {
        for (key, want) in [&k1, &k2, &k3].into_iter().zip(want) {
            assert_eq!(c.value(key).map(String::as_str), want, "{c}: {key:?}");
        }
        assert_eq!(c.value(&same_name), None, "a key is not found by its name");
    };

    let c0 = Context::background();
    check(&c0, [None, None, None]);

    let c1 = with_value(&c0, &k1, "c1k1".to_string());
    check(&c1, [Some("c1k1"), None, None]);
    assert_eq!(c1.to_string(), "context.Background.WithValue(k1, c1k1)");

    let c2 = with_value(&c1, &k2, "c2k2".to_string());
    check(&c2, [Some("c1k1"), Some("c2k2"), None]);

    let c3 = with_value(&c2, &k3, "c3k3".to_string());
    check(&c3, [Some("c1k1"), Some("c2k2"), Some("c3k3")]);

    let c4 = with_value(&c3, &k1, "c4k1".to_string());
    check(&c4, [Some("c4k1"), Some("c2k2"), Some("c3k3")]);

    let (o0, _cancel) = with_cancel(&c4);
    check(&o0, [Some("c4k1"), Some("c2k2"), Some("c3k3")]);
    let o1 = with_value(&o0, &k2, "o1k2".to_string());
    check(&o1, [Some("c4k1"), Some("o1k2"), Some("c3k3")]);

    // A clone of a key is the same key; a non-string value prints its type.
    let counter: Key<u64> = Key::new("counter");
    let c5 = with_value(&c0, &counter, 7u64);
    assert_eq!(c5.value(&counter.clone()), Some(&7));
    assert_eq!(c5.to_string(), "context.Background.WithValue(counter, u64)");
}

// Go: TestSimultaneousCancels
#[test]
fn simultaneous_cancels() {
    let (root, cancel_root) = with_cancel(&Context::background());
    let mut all = vec![(root.clone(), cancel_root)];
    let mut queue = vec![root];
    while all.len() < 100 {
        let parent = queue.remove(0);
        for _ in 0..4 {
            let (c, cancel) = with_cancel(&parent);
            queue.push(c.clone());
            all.push((c, cancel));
        }
    }
    thread::scope(|s| {
        for (_, cancel) in &all {
            s.spawn(move || cancel.cancel());
        }
    });
    for (c, _) in &all {
        assert!(c.wait_timeout(PATIENCE), "a context stayed live");
        assert_done(c, Error::Canceled, "node");
    }
}

// Go: TestInterlockedCancels
#[test]
fn interlocked_cancels() {
    let (parent, cancel_parent) = with_cancel(&Context::background());
    let (child, cancel_child) = with_cancel(&parent);
    let p = parent.clone();
    let t = thread::spawn(move || {
        p.wait();
        cancel_child.cancel();
    });
    cancel_parent.cancel();
    assert!(child.wait_timeout(PATIENCE));
    t.join().unwrap();
}

/// A tiny deterministic generator, so a failing seed can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// Go: TestLayersCancel and TestLayersTimeout
#[test]
fn layers() {
    let seed = Instant::now().elapsed().as_nanos() as u64 | 1;
    for test_timeout in [false, true] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let keys: Vec<Key<usize>> = (0..3).map(|i| Key::new(format!("k{i}"))).collect();
        let mut vals = [None::<usize>; 3];
        let mut ctx = Context::background();
        let mut cancels = Vec::new();
        let mut has_timeout = false;
        for i in 0..30 {
            match rng.below(3) {
                0 => {
                    let k = rng.below(3) as usize;
                    ctx = with_value(&ctx, &keys[k], i);
                    vals[k] = Some(i);
                }
                1 => {
                    let (c, cancel) = with_cancel(&ctx);
                    ctx = c;
                    cancels.push(cancel);
                }
                _ => {
                    let d = if test_timeout && !has_timeout {
                        Duration::from_millis(20)
                    } else {
                        FOREVER
                    };
                    has_timeout |= test_timeout;
                    let (c, cancel) = with_timeout(&ctx, d);
                    ctx = c;
                    cancels.push(cancel);
                }
            }
            for (k, want) in keys.iter().zip(vals) {
                assert_eq!(ctx.value(k).copied(), want, "seed {seed}: {ctx}");
            }
        }
        if test_timeout && has_timeout {
            assert!(ctx.wait_timeout(PATIENCE), "seed {seed}: timeout never fired");
            assert_done(&ctx, Error::DeadlineExceeded, "layers");
        } else if test_timeout {
            assert_live(&ctx, "layers without a timeout");
        }
        if let Some(cancel) = cancels.get(rng.below(cancels.len().max(1) as u64) as usize) {
            cancel.cancel();
            assert!(ctx.is_done(), "seed {seed}: cancel of one layer must reach the leaf");
        }
    }
}

// Go: TestWithCancelCanceledParent
#[test]
fn with_cancel_canceled_parent() {
    let (parent, pcancel) = with_cancel_cause(&Context::background());
    pcancel.cancel(Some(Cause::msg("whatever")));
    let (c, _cancel) = with_cancel(&parent);
    assert_done(&c, Error::Canceled, "child");
    assert_eq!(msg(&cause(&c)), "whatever");
    // Deadline children of a done parent are done with the parent's error,
    // not their own deadline's.
    let (t, _cancel) = with_timeout_cause(&parent, Duration::ZERO, Cause::msg("too slow"));
    assert_done(&t, Error::Canceled, "timeout child");
    assert_eq!(msg(&cause(&t)), "whatever");
}

// Go: TestWithCancelSimultaneouslyCanceledParent
#[test]
fn with_cancel_simultaneously_canceled_parent() {
    for _ in 0..100 {
        let (parent, pcancel) = with_cancel_cause(&Context::background());
        let t = thread::spawn(move || pcancel.cancel(Some(Cause::msg("whatever"))));
        let (c, _cancel) = with_cancel(&parent);
        assert!(c.wait_timeout(PATIENCE), "child of a canceled parent stayed live");
        assert_eq!(c.err(), Some(Error::Canceled));
        assert_eq!(msg(&cause(&c)), "whatever");
        t.join().unwrap();
    }
}

// Go: TestDeadlineExceededSupportsTimeout
#[test]
fn deadline_exceeded_is_a_timeout() {
    assert!(Error::DeadlineExceeded.is_timeout());
    assert!(!Error::Canceled.is_timeout());
    assert_eq!(Error::DeadlineExceeded.to_string(), "context deadline exceeded");
    assert_eq!(Error::Canceled.to_string(), "context canceled");
}

// Go: TestCause's table is scenarios 011-033 of tests/conformance, where
// every runner (Rust's included) is checked against Go itself.

// Go: TestCauseRace
#[test]
fn cause_race() {
    let (c, cancel) = with_cancel_cause(&Context::background());
    let t = thread::spawn(move || cancel.cancel(Some(Cause::msg("cause"))));
    loop {
        // Err and Cause never disagree: once done, the cause is the one given.
        if let Some(why) = cause(&c) {
            assert_eq!(why.to_string(), "cause");
            assert_eq!(c.err(), Some(Error::Canceled));
            break;
        }
        thread::yield_now();
    }
    t.join().unwrap();
}

// Go: TestWithoutCancel
#[test]
fn without_cancel_keeps_values_only() {
    let key: Key<&str> = Key::new("key");
    let (parent, cancel) = with_cancel(&with_value(&Context::background(), &key, "value"));
    let (parent, _keep) = with_timeout(&parent, FOREVER);
    let c = without_cancel(&parent);
    assert_eq!(c.value(&key), Some(&"value"));
    assert_eq!(c.deadline(), None);
    assert_live(&c, "WithoutCancel");
    assert!(c.to_string().ends_with(".WithoutCancel"), "{c}");
    cancel.cancel();
    assert_done(&parent, Error::Canceled, "parent");
    assert_live(&c, "WithoutCancel after parent cancel");
    assert_eq!(c.value(&key), Some(&"value"));
    assert!(!c.wait_timeout(Duration::from_millis(10)));

    // Its children are independent of the original parent and can be canceled.
    let (child, child_cancel) = with_cancel(&c);
    assert_live(&child, "child of WithoutCancel");
    child_cancel.cancel();
    assert_done(&child, Error::Canceled, "child of WithoutCancel");
}

// Go: TestContextErrDoneRace
#[test]
fn err_implies_done() {
    for _ in 0..1000 {
        let (c, cancel) = with_cancel(&Context::background());
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let _reg = c.on_done(move || flag.store(true, Ordering::SeqCst));
        let t = thread::spawn(move || cancel.cancel());
        // Polls the state as a reader racing the canceller would; yields so
        // that on a loaded machine the canceller gets the CPU.
        while c.err().is_none() {
            thread::yield_now();
        }
        assert!(c.is_done(), "err set but not done");
        assert!(c.wait_timeout(Duration::ZERO), "err set but a wait blocks");
        t.join().unwrap();
        assert!(
            done.load(Ordering::SeqCst),
            "on-done callback ran before cancel returned"
        );
    }
}

// Go: ExampleWithValue, with a typed key.
#[test]
fn typed_key_pattern() {
    static FAVORITE: LazyLock<Key<String>> = LazyLock::new(|| Key::new("favorite-color"));
    let ctx = with_value(&Context::background(), &FAVORITE, "Go".to_string());
    assert_eq!(ctx.value(&FAVORITE).map(String::as_str), Some("Go"));
    let other: Key<String> = Key::new("favorite-color");
    assert_eq!(ctx.value(&other), None);
}

#[test]
fn deadline_cause_only_applies_to_the_deadline() {
    let (c, _cancel) = with_deadline_cause(&Context::background(), Instant::now(), Cause::with_code("slow", 7));
    assert_done(&c, Error::DeadlineExceeded, "past deadline");
    let why = cause(&c).unwrap();
    assert_eq!((why.to_string(), why.code()), ("slow".to_string(), Some(7)));
}
