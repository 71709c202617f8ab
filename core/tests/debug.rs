//! Lost-cancel detection and live-context tracking. A test binary of its
//! own: the hook and the tracking switch are process-wide.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use polyctx::{debug, with_cancel, with_timeout, with_value, without_cancel, Context, Key};

/// One test at a time: the switch and the hook are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn lost_cancels_are_counted_and_reported_and_nothing_else_is() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    debug::set_lost_cancel_hook(Some(Box::new(move |lost| sink.lock().unwrap().push(lost.clone()))));
    let key: Key<String> = Key::new("marker");
    let before = debug::lost_cancels();

    // Forgotten: both handles dropped while live.
    let root = with_value(&Context::background(), &key, "forgotten".to_string());
    let (ctx, cancel) = with_cancel(&root);
    drop((ctx, cancel));
    // Canceled, expired, or never cancelable: not lost.
    let (ctx, cancel) = with_cancel(&root);
    cancel.cancel();
    drop((ctx, cancel));
    let (ctx, cancel) = with_timeout(&root, Duration::ZERO);
    drop((ctx, cancel));
    drop(without_cancel(&root));

    assert_eq!(debug::lost_cancels() - before, 1);
    let reports = reports.lock().unwrap();
    let ours: Vec<_> = reports.iter().filter(|r| r.context.contains("forgotten")).collect();
    assert_eq!(ours.len(), 1, "{reports:?}");
    assert_eq!(
        ours[0].context,
        "context.Background.WithValue(marker, forgotten).WithCancel"
    );
    debug::set_lost_cancel_hook(None);
}

#[test]
fn tracked_contexts_are_listed_as_a_tree_with_their_sites() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    debug::track(true);
    let site = format!("{}:{}", file!(), line!() + 1);
    let (root, cancel_root) = with_cancel(&Context::background());
    let (timed, cancel_timed) = with_timeout(&root, Duration::from_secs(3600));
    let valued = with_value(&timed, &Key::new("k"), 1u8);
    debug::set_site(&valued, "handler.py:12");
    debug::track(false);
    let (untracked, cancel_untracked) = with_cancel(&valued);

    let snap = debug::snapshot();
    let ours: Vec<_> = snap.contexts.iter().collect();
    let root_t = ours
        .iter()
        .find(|t| t.kind == "WithCancel" && t.parent.is_none())
        .expect("root tracked");
    let timed_t = ours
        .iter()
        .find(|t| t.parent == Some(root_t.id))
        .expect("child tracked");
    assert_eq!(timed_t.kind, "WithDeadline");
    assert!(timed_t.deadline_in.unwrap() > Duration::from_secs(3500));
    assert_eq!(root_t.site.as_deref(), Some(site.as_str()), "where it was made");
    let valued_t = ours
        .iter()
        .find(|t| t.parent == Some(timed_t.id))
        .expect("grandchild tracked");
    assert_eq!(valued_t.site.as_deref(), Some("handler.py:12"));
    assert!(
        !ours.iter().any(|t| t.parent == Some(valued_t.id)),
        "made with tracking off"
    );
    let text = snap.to_string();
    assert!(
        text.contains("WithCancel") && text.contains("\n  #") && text.contains("made at handler.py:12"),
        "{text}"
    );

    cancel_root.cancel();
    assert!(
        debug::snapshot().contexts.iter().any(|t| t.err.is_some()),
        "done contexts stay listed while alive"
    );
    drop((
        root,
        cancel_root,
        timed,
        cancel_timed,
        valued,
        untracked,
        cancel_untracked,
    ));
    assert!(
        debug::snapshot().is_empty(),
        "nothing left running: {}",
        debug::snapshot()
    );
}

#[test]
fn pending_after_funcs_are_counted_until_they_start_or_are_stopped() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = polyctx::stats::pending_after_funcs();
    let (ctx, cancel) = with_cancel(&Context::background());
    let (tx, rx) = std::sync::mpsc::channel();
    let ran = polyctx::after_func(&ctx, move || tx.send(()).unwrap());
    let stopped = polyctx::after_func(&ctx, || {});
    let never = polyctx::after_func(&Context::background(), || {});
    assert_eq!(polyctx::stats::pending_after_funcs(), base + 3);
    assert!(stopped.stop());
    drop(never); // its context can never be done: it can never run
    assert_eq!(polyctx::stats::pending_after_funcs(), base + 1);
    cancel.cancel();
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(polyctx::stats::pending_after_funcs(), base);
    drop(ran);
}

#[test]
fn a_hook_may_replace_itself_and_free_contexts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = std::sync::mpsc::channel();
    // On a thread of its own: a deadlock fails the test instead of hanging it.
    std::thread::spawn(move || {
        let calls = Arc::new(Mutex::new(0));
        let seen = calls.clone();
        debug::set_lost_cancel_hook(Some(Box::new(move |_| {
            *seen.lock().unwrap() += 1;
            debug::set_lost_cancel_hook(None);
            drop(with_cancel(&Context::background())); // a context the hook frees
        })));
        drop(with_cancel(&Context::background()));
        drop(with_cancel(&Context::background()));
        let calls = *calls.lock().unwrap();
        tx.send(calls).unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(1));
}
