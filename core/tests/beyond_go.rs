//! What polyctx promises beyond Go: no leak when cancel is forgotten,
//! million-deep chains, cancel-on-drop guards, and thread-safety under stress.
//! (Timer-wide counts are checked in `timer.rs`, a binary of its own.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use polyctx::{cause, stats, with_cancel, with_timeout, with_value, without_cancel, Context, Error, Key};

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn dropped_children_detach_from_their_parent() {
    let (parent, _cancel) = with_cancel(&Context::background());
    for i in 0..1_000_000 {
        let child = if i % 2 == 0 {
            with_cancel(&parent)
        } else {
            with_timeout(&parent, Duration::from_secs(3600))
        };
        // Forgetting to cancel: both handles dropped here.
        drop(child);
    }
    assert_eq!(stats::children(&parent), 0);
}

#[test]
fn live_children_are_counted_until_dropped() {
    let (parent, _cancel) = with_cancel(&Context::background());
    let kids: Vec<_> = (0..1000).map(|_| with_cancel(&parent)).collect();
    assert_eq!(stats::children(&parent), 1000);
    // Dropping only the context keeps the child: its cancel func can still cancel it.
    let funcs: Vec<_> = kids.into_iter().map(|(_, cancel)| cancel).collect();
    assert_eq!(stats::children(&parent), 1000);
    drop(funcs);
    assert_eq!(stats::children(&parent), 0);
}

#[test]
fn dropping_an_uncalled_cancel_func_leaves_the_context_live() {
    let (parent, cancel_parent) = with_cancel(&Context::background());
    let (child, cancel) = with_cancel(&parent);
    drop(cancel);
    assert!(!child.is_done(), "dropping a CancelFunc must not cancel");
    cancel_parent.cancel();
    assert_eq!(child.err(), Some(Error::Canceled), "the parent still reaches it");
}

#[test]
fn guard_cancels_on_drop() {
    let (ctx, cancel) = with_cancel(&Context::background());
    {
        let _guard = cancel.guard();
        assert!(!ctx.is_done());
    }
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn guard_cancels_during_unwinding() {
    let (ctx, cancel) = with_cancel(&Context::background());
    let result = std::panic::catch_unwind(move || {
        let _guard = cancel.guard();
        panic!("request handler failed");
    });
    assert!(result.is_err());
    assert!(ctx.is_done());
}

const DEEP: usize = 1_000_000;

#[test]
fn million_deep_cancel_chain() {
    let (root, cancel) = with_cancel(&Context::background());
    let mut leaf = root.clone();
    let mut funcs = Vec::with_capacity(DEEP);
    for _ in 0..DEEP {
        let (c, f) = with_cancel(&leaf);
        leaf = c;
        funcs.push(f);
    }
    drop(funcs);
    assert!(!leaf.is_done());
    cancel.cancel();
    assert_eq!(leaf.err(), Some(Error::Canceled));
    assert!(leaf.to_string().starts_with("context.Background.WithCancel.WithCancel"));
    drop(root);
    drop(leaf); // frees the whole chain, iteratively
}

#[test]
fn million_deep_value_chain() {
    let key: Key<usize> = Key::new("depth");
    let absent: Key<usize> = Key::new("absent");
    let mut leaf = with_value(&Context::background(), &key, 0);
    for _ in 0..DEEP {
        leaf = without_cancel(&leaf);
    }
    assert_eq!(leaf.value(&key), Some(&0));
    assert_eq!(leaf.value(&absent), None);
    drop(leaf);
}

#[test]
fn deep_chain_dropped_from_the_root_end() {
    // Contexts dropped root first: each free happens when the last handle
    // goes, and the final drop frees everything without recursion.
    let mut all = Vec::with_capacity(DEEP);
    let mut leaf = Context::background();
    for _ in 0..DEEP {
        let (c, f) = with_cancel(&leaf);
        all.push(f);
        leaf = c;
    }
    drop(all);
    drop(leaf);
}

#[test]
fn stress_cancel_derive_wait_drop_from_many_threads() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 50;
    for _ in 0..ROUNDS {
        let (root, cancel_root) = with_cancel(&Context::background());
        let start = Arc::new(Barrier::new(THREADS + 1));
        let observed_done = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let root = root.clone();
                let start = start.clone();
                let observed_done = observed_done.clone();
                thread::spawn(move || {
                    start.wait();
                    let mut kept = Vec::new();
                    for i in 0..30 {
                        let (c, cancel) = match (t + i) % 3 {
                            0 => with_cancel(&root),
                            1 => with_timeout(&root, Duration::from_millis((i % 5) as u64)),
                            _ => with_cancel(&with_value(&root, &Key::new("k"), i)),
                        };
                        let (grandchild, _g) = with_cancel(&c);
                        match i % 4 {
                            0 => cancel.cancel(),
                            1 => kept.push((c, cancel)),
                            2 => drop((c, cancel)),
                            _ => {
                                let t = thread::spawn(move || cancel.cancel());
                                assert!(c.wait_timeout(PATIENCE));
                                t.join().unwrap();
                            }
                        }
                        drop(grandchild);
                    }
                    root.wait();
                    for (c, _) in &kept {
                        // As in Go, the root is observably done before the
                        // walk reaches its children; done once cancel returns.
                        assert!(c.wait_timeout(PATIENCE), "root canceled, child stayed live");
                        assert!(cause(c).is_some());
                    }
                    observed_done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        start.wait();
        thread::sleep(Duration::from_millis(1)); // let the workers race the cancel; not for synchronisation
        cancel_root.cancel();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(observed_done.load(Ordering::SeqCst), THREADS);
        assert_eq!(stats::children(&root), 0);
    }
}

#[test]
fn every_handle_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Context>();
    send_sync::<polyctx::CancelFunc>();
    send_sync::<polyctx::CancelCauseFunc>();
    send_sync::<polyctx::CancelGuard>();
    send_sync::<polyctx::Done>();
    send_sync::<polyctx::Registration>();
    send_sync::<polyctx::AfterFunc>();
    send_sync::<polyctx::Cause>();
    send_sync::<Key<std::cell::Cell<u8>>>(); // a key is shareable whatever it finds
}
