//! Model-based test: random sequences of operations (derive of every kind,
//! cancel with and without causes, values, dropping handles, on-done
//! callbacks, after-funcs and stopping them, waits) run against the core
//! and against a small, obviously correct model of Go's semantics, written
//! here from the spec with no cleverness. After every operation every
//! observable (err, cause, deadline, values, which callbacks ran) must
//! agree. proptest shrinks a failing sequence to a minimal one.
//!
//! Deadlines are either already past or an hour away, so that no timer
//! fires during a case; the timer's own behaviour has its own tests.
//! `make test` runs a short run; `make stress` (POLYCTX_STRESS=1) runs
//! about 100,000 operations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polyctx::{
    after_func, cause, stats, with_cancel, with_cancel_cause, with_deadline, with_deadline_cause, with_value,
    without_cancel, AfterFunc, CancelCauseFunc, CancelFunc, Cause, Context, Error, Key, Registration,
};
use proptest::prelude::*;

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
enum Derive {
    Cancel,
    CancelCause,
    /// A deadline an hour away; `Some` gives a deadline cause.
    Later(Option<u8>),
    /// A deadline already past.
    Past(Option<u8>),
    Value(u8),
    WithoutCancel,
}

#[derive(Clone, Debug)]
enum Op {
    Derive(usize, Derive),
    Cancel(usize, Option<u8>),
    DropContext(usize),
    DropCancel(usize),
    OnDone(usize),
    AfterFunc(usize),
    Stop(usize),
    Wait(usize),
}

fn derive_strategy() -> impl Strategy<Value = Derive> {
    prop_oneof![
        3 => Just(Derive::Cancel),
        2 => Just(Derive::CancelCause),
        2 => proptest::option::of(0u8..3).prop_map(Derive::Later),
        1 => proptest::option::of(0u8..3).prop_map(Derive::Past),
        2 => (0u8..3).prop_map(Derive::Value),
        1 => Just(Derive::WithoutCancel),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let i = 0usize..1000;
    prop_oneof![
        6 => (i.clone(), derive_strategy()).prop_map(|(p, d)| Op::Derive(p, d)),
        4 => (i.clone(), proptest::option::of(0u8..3)).prop_map(|(c, cause)| Op::Cancel(c, cause)),
        1 => i.clone().prop_map(Op::DropContext),
        1 => i.clone().prop_map(Op::DropCancel),
        2 => i.clone().prop_map(Op::OnDone),
        2 => i.clone().prop_map(Op::AfterFunc),
        2 => i.clone().prop_map(Op::Stop),
        1 => i.prop_map(Op::Wait),
    ]
}

// The model ------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Root,
    Cancelable,
    Value(u8),
    WithoutCancel,
}

#[derive(Clone, Debug)]
struct ModelNode {
    parent: Option<usize>,
    kind: Kind,
    /// For cancelable nodes: why it is done, and the cause.
    done: Option<(Error, String)>,
    /// The effective deadline (`None`: never), and whether this node owns it.
    deadline: Option<Instant>,
    own_deadline_cause: Option<String>,
}

struct Model {
    nodes: Vec<ModelNode>,
}

impl Model {
    /// The nearest cancelable node at or above `i` (Go's "signal").
    fn signal(&self, mut i: usize) -> Option<usize> {
        loop {
            match self.nodes[i].kind {
                Kind::Cancelable => return Some(i),
                Kind::WithoutCancel | Kind::Root => return None,
                Kind::Value(_) => i = self.nodes[i].parent?,
            }
        }
    }

    fn done(&self, i: usize) -> Option<(Error, String)> {
        self.signal(i).and_then(|s| self.nodes[s].done.clone())
    }

    fn deadline(&self, i: usize) -> Option<Instant> {
        self.signal(i).and_then(|s| self.nodes[s].deadline)
    }

    fn value(&self, mut i: usize, key: u8) -> Option<usize> {
        loop {
            if self.nodes[i].kind == Kind::Value(key) {
                return Some(i);
            }
            i = self.nodes[i].parent?;
        }
    }

    /// Cancels `root` and every cancelable descendant it reaches.
    fn cancel(&mut self, root: usize, err: Error, cause: String) {
        if self.nodes[root].done.is_some() {
            return;
        }
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if self.nodes[n].done.is_some() {
                continue;
            }
            self.nodes[n].done = Some((err, cause.clone()));
            for c in 0..self.nodes.len() {
                if self.nodes[c].kind == Kind::Cancelable
                    && self.nodes[c].parent.and_then(|p| self.signal(p)) == Some(n)
                {
                    stack.push(c);
                }
            }
        }
    }
}

// The system under test ---------------------------------------------------

enum Canceller {
    Plain(CancelFunc),
    Cause(CancelCauseFunc),
}

enum Reg {
    OnDone(Registration),
    After(AfterFunc),
}

struct Live {
    ctx: Option<Context>,
    cancel: Option<Canceller>,
}

struct Callback {
    node: usize,
    reg: Reg,
    ran: Arc<AtomicUsize>,
    stopped: bool,
}

fn cause_text(c: u8) -> String {
    format!("cause-{c}")
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let keys: Vec<Key<usize>> = (0..3).map(|k| Key::new(format!("k{k}"))).collect();
    // Node 0 is Background; node 1 a cancelable root that every case
    // cancels at the end, so that every callback's fate is decided.
    let root_node = |parent, kind| ModelNode {
        parent,
        kind,
        done: None,
        deadline: None,
        own_deadline_cause: None,
    };
    let mut model = Model {
        nodes: vec![root_node(None, Kind::Root), root_node(Some(0), Kind::Cancelable)],
    };
    let (root, cancel_root) = with_cancel(&Context::background());
    let mut live = vec![
        Live {
            ctx: Some(Context::background()),
            cancel: None,
        },
        Live {
            ctx: Some(root.clone()),
            cancel: Some(Canceller::Plain(cancel_root.clone())),
        },
    ];
    let mut callbacks: Vec<Callback> = Vec::new();
    // on-done callbacks run synchronously on the canceller: record order.
    let log = Arc::new(Mutex::new(Vec::new()));

    for op in ops {
        match op {
            Op::Derive(p, how) => {
                let p = p % live.len();
                let Some(parent) = live[p].ctx.clone() else { continue };
                let parent_deadline = model.deadline(p);
                let parent_done = model.done(p);
                let now = Instant::now();
                let mut node = ModelNode {
                    parent: Some(p),
                    kind: Kind::Cancelable,
                    done: None,
                    deadline: parent_deadline,
                    own_deadline_cause: None,
                };
                let (ctx, cancel) = match how {
                    Derive::Cancel => {
                        let (c, f) = with_cancel(&parent);
                        (c, Some(Canceller::Plain(f)))
                    }
                    Derive::CancelCause => {
                        let (c, f) = with_cancel_cause(&parent);
                        (c, Some(Canceller::Cause(f)))
                    }
                    Derive::Later(dc) | Derive::Past(dc) => {
                        let past = matches!(how, Derive::Past(_));
                        let at = if past {
                            now - Duration::from_millis(1)
                        } else {
                            now + HOUR
                        };
                        // Go: a parent's earlier deadline is simply inherited.
                        if parent_deadline.is_none_or(|pd| at <= pd) {
                            node.deadline = Some(at);
                            node.own_deadline_cause = dc.map(cause_text);
                            if past && parent_done.is_none() {
                                let why = node.own_deadline_cause.clone();
                                node.done = Some((
                                    Error::DeadlineExceeded,
                                    why.unwrap_or_else(|| Error::DeadlineExceeded.to_string()),
                                ));
                            }
                        }
                        let (c, f) = match dc {
                            Some(k) => with_deadline_cause(&parent, at, Cause::msg(cause_text(k))),
                            None => with_deadline(&parent, at),
                        };
                        (c, Some(Canceller::Plain(f)))
                    }
                    Derive::Value(k) => {
                        node.kind = Kind::Value(k);
                        node.deadline = None;
                        (with_value(&parent, &keys[k as usize], model.nodes.len()), None)
                    }
                    Derive::WithoutCancel => {
                        node.kind = Kind::WithoutCancel;
                        node.deadline = None;
                        (without_cancel(&parent), None)
                    }
                };
                if node.kind == Kind::Cancelable && parent_done.is_some() {
                    node.done = parent_done; // Go's propagateCancel
                }
                model.nodes.push(node);
                live.push(Live { ctx: Some(ctx), cancel });
            }
            Op::Cancel(i, c) => {
                let i = i % live.len();
                let Some(cancel) = &live[i].cancel else { continue };
                let (err, text) = match (cancel, c) {
                    (Canceller::Plain(f), _) => {
                        f.cancel();
                        (Error::Canceled, Error::Canceled.to_string())
                    }
                    (Canceller::Cause(f), Some(k)) => {
                        f.cancel(Some(Cause::msg(cause_text(k))));
                        (Error::Canceled, cause_text(k))
                    }
                    (Canceller::Cause(f), None) => {
                        f.cancel(None);
                        (Error::Canceled, Error::Canceled.to_string())
                    }
                };
                model.cancel(i, err, text);
            }
            Op::DropContext(i) => {
                let i = i % live.len();
                if i > 1 {
                    live[i].ctx = None;
                }
            }
            Op::DropCancel(i) => {
                let i = i % live.len();
                if i > 1 {
                    live[i].cancel = None;
                }
            }
            Op::OnDone(i) => {
                let i = i % live.len();
                let Some(ctx) = &live[i].ctx else { continue };
                let ran = Arc::new(AtomicUsize::new(0));
                let (r, log) = (ran.clone(), log.clone());
                let id = callbacks.len();
                let reg = ctx.on_done(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                    log.lock().unwrap().push(id);
                });
                callbacks.push(Callback {
                    node: i,
                    reg: Reg::OnDone(reg),
                    ran,
                    stopped: false,
                });
            }
            Op::AfterFunc(i) => {
                let i = i % live.len();
                let Some(ctx) = &live[i].ctx else { continue };
                let ran = Arc::new(AtomicUsize::new(0));
                let r = ran.clone();
                let reg = after_func(ctx, move || {
                    r.fetch_add(1, Ordering::SeqCst);
                });
                callbacks.push(Callback {
                    node: i,
                    reg: Reg::After(reg),
                    ran,
                    stopped: false,
                });
            }
            Op::Stop(i) => {
                if callbacks.is_empty() {
                    continue;
                }
                let n = callbacks.len();
                let cb = &mut callbacks[i % n];
                let stopped = match &cb.reg {
                    Reg::OnDone(r) => r.stop(),
                    Reg::After(a) => a.stop(),
                };
                // Stop succeeds exactly when the context is not done yet
                // and it was not stopped before.
                prop_assert_eq!(
                    stopped,
                    model.done(cb.node).is_none() && !cb.stopped,
                    "stop() of callback on node {}",
                    cb.node
                );
                cb.stopped |= stopped;
            }
            Op::Wait(i) => {
                let i = i % live.len();
                let Some(ctx) = &live[i].ctx else { continue };
                prop_assert_eq!(ctx.wait_timeout(Duration::ZERO), model.done(i).is_some());
            }
        }
        check(&model, &live, &keys, &callbacks)?;
    }

    cancel_root.cancel();
    model.cancel(1, Error::Canceled, Error::Canceled.to_string());
    check(&model, &live, &keys, &callbacks)?;

    // After-funcs run on the pool: wait (bounded) for every one that must run.
    let deadline = Instant::now() + Duration::from_secs(20);
    for cb in &callbacks {
        let expected = usize::from(model.done(cb.node).is_some() && !cb.stopped);
        while cb.ran.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
            std::thread::yield_now();
        }
        prop_assert_eq!(
            cb.ran.load(Ordering::SeqCst),
            expected,
            "callback on node {} ran the wrong number of times",
            cb.node
        );
    }
    // Every child was unhooked when the root was canceled.
    drop((live, callbacks));
    prop_assert_eq!(stats::children(&root), 0);
    prop_assert_eq!(stats::pending_callbacks(&root), 0);
    Ok(())
}

fn check(model: &Model, live: &[Live], keys: &[Key<usize>], callbacks: &[Callback]) -> Result<(), TestCaseError> {
    for (i, l) in live.iter().enumerate() {
        let Some(ctx) = &l.ctx else { continue };
        let expected = model.done(i);
        prop_assert_eq!(ctx.err(), expected.as_ref().map(|(e, _)| *e), "err of node {}", i);
        prop_assert_eq!(
            cause(ctx).map(|c| c.to_string()),
            expected.map(|(_, c)| c),
            "cause of node {}",
            i
        );
        prop_assert_eq!(ctx.deadline(), model.deadline(i), "deadline of node {}", i);
        for (k, key) in keys.iter().enumerate() {
            prop_assert_eq!(
                ctx.value(key).copied(),
                model.value(i, k as u8),
                "value {} of node {}",
                k,
                i
            );
        }
    }
    for cb in callbacks {
        if let Reg::OnDone(_) = cb.reg {
            // On-done callbacks run on the cancelling thread, before cancel returns.
            let expected = usize::from(model.done(cb.node).is_some() && !cb.stopped);
            prop_assert_eq!(
                cb.ran.load(Ordering::SeqCst),
                expected,
                "on-done callback on node {}",
                cb.node
            );
        }
    }
    Ok(())
}

fn cases() -> u32 {
    if std::env::var_os("POLYCTX_STRESS").is_some() {
        2_500 // x about 40 operations each: about 100,000
    } else {
        200
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_core_agrees_with_the_model(ops in proptest::collection::vec(op_strategy(), 1..80)) {
        run(ops)?;
    }
}
