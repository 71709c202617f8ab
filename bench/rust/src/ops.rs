//! The operations, each with polyctx and (where one exists) its tokio-util peer.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use polyctx::{with_cancel, with_timeout, with_value, Context, Key};
use tokio_util::sync::CancellationToken;

use crate::harness::{emit, time, Bench, Case};
use crate::memory;

const HOUR: Duration = Duration::from_secs(3600);
const AREA: &str = "rust";

pub fn core(bench: &Bench) {
    let (parent, _keep) = with_cancel(&Context::background());
    let token = CancellationToken::new();

    bench.compare(
        AREA,
        "derive+cancel",
        vec![
            case("polyctx", |n| {
                time(n, || {
                    let (c, cancel) = with_cancel(&parent);
                    cancel.cancel();
                    black_box(c);
                })
            }),
            case("tokio-util", |n| {
                time(n, || {
                    let t = token.child_token();
                    t.cancel();
                    black_box(t);
                })
            }),
        ],
    );

    bench.compare(
        AREA,
        "derive+cancel with deadline",
        vec![case("polyctx", |n| {
            time(n, || {
                let (c, cancel) = with_timeout(&parent, HOUR);
                cancel.cancel();
                black_box(c);
            })
        })],
    );

    let (live, _c) = with_cancel(&parent);
    let live_token = token.child_token();
    bench.compare(
        AREA,
        "is_done",
        vec![
            case("polyctx", |n| {
                time(n, || {
                    black_box(black_box(&live).is_done());
                })
            }),
            case("tokio-util", |n| {
                time(n, || {
                    black_box(black_box(&live_token).is_cancelled());
                })
            }),
        ],
    );

    bench.compare(
        AREA,
        "err",
        vec![case("polyctx", |n| {
            time(n, || {
                black_box(black_box(&live).err());
            })
        })],
    );

    for depth in [10, 100] {
        let (key, leaf) = value_chain(depth);
        bench.compare(
            AREA,
            &format!("value lookup depth {depth}"),
            vec![case("polyctx", |n| {
                time(n, || {
                    black_box(black_box(&leaf).value(&key));
                })
            })],
        );
    }

    bench.compare_per(
        AREA,
        "tree cancel 10k (per node)",
        10_000,
        vec![
            case("polyctx", |n| per_node(n, 10_000, polyctx_tree)),
            case("tokio-util", |n| per_node(n, 10_000, tokio_tree)),
        ],
    );

    bench.compare_per(
        AREA,
        "wake 10k async waiters (per waiter)",
        WAITERS as u64,
        vec![
            case("polyctx", |n| wake_waiters(n, true)),
            case("tokio-util", |n| wake_waiters(n, false)),
        ],
    );
}

pub fn scaling(bench: &Bench, quick: bool) {
    let sizes: &[usize] = if quick {
        &[100, 10_000]
    } else {
        &[100, 1_000, 10_000, 100_000, 1_000_000]
    };
    for &size in sizes {
        bench.compare_per(
            "scaling",
            &format!("tree cancel {size} (per node)"),
            size as u64,
            vec![case("polyctx", |n| per_node(n, size, polyctx_tree))],
        );
    }
    for depth in [1, 10, 100, 1000] {
        let (key, leaf) = value_chain(depth);
        bench.compare(
            "scaling",
            &format!("value lookup depth {depth}"),
            vec![case("polyctx", |n| {
                time(n, || {
                    black_box(black_box(&leaf).value(&key));
                })
            })],
        );
    }
    let live_count = if quick { 100_000 } else { 1_000_000 };
    let (root, _keep) = with_cancel(&Context::background());
    let live: Vec<_> = (0..live_count)
        .map(|i| with_timeout(&root, HOUR + Duration::from_micros(i as u64)))
        .collect();
    bench.compare(
        "scaling",
        &format!("deadline derive+cancel with {live_count} live"),
        vec![case("polyctx", |n| {
            time(n, || {
                let (c, cancel) = with_timeout(&root, HOUR + Duration::from_millis(500));
                cancel.cancel();
                black_box(c);
            })
        })],
    );
    drop(live);
}

pub fn memory(quick: bool) {
    let count = if quick { 200_000 } else { 1_000_000 };
    for kind in ["context", "deadline", "value", "tokio-child"] {
        memory::measure_in_child(kind, count);
    }
}

/// In a child process: bytes per live object of one kind.
pub fn memory_of(kind: &str, count: usize) {
    let (parent, _keep) = with_cancel(&Context::background());
    let token = CancellationToken::new();
    let key: Key<u64> = Key::new("k");
    let (op, implementation, (heap, rss)) = match kind {
        "context" => (
            "live context",
            "polyctx",
            memory::per_object(count, || with_cancel(&parent)),
        ),
        "deadline" => (
            "live deadline context",
            "polyctx",
            memory::per_object(count, || with_timeout(&parent, HOUR)),
        ),
        "value" => (
            "live value context",
            "polyctx",
            memory::per_object(count, || with_value(&parent, &key, 7u64)),
        ),
        "tokio-child" => (
            "live context",
            "tokio-util",
            memory::per_object(count, || token.child_token()),
        ),
        _ => return eprintln!("unknown kind {kind}"),
    };
    emit("memory", &format!("heap bytes per {op}"), implementation, "bytes", heap);
    emit(
        "memory",
        &format!("resident bytes per {op}"),
        implementation,
        "bytes",
        rss,
    );
}

pub fn profile(op: &str) {
    let (parent, _keep) = with_cancel(&Context::background());
    match op {
        "derive-cancel" => {
            for _ in 0..1_000_000 {
                let (c, cancel) = with_cancel(&parent);
                cancel.cancel();
                black_box(c);
            }
        }
        "tokio-derive-cancel" => {
            let token = CancellationToken::new();
            for _ in 0..1_000_000 {
                let t = token.child_token();
                t.cancel();
                black_box(t);
            }
        }
        "deadline" => {
            for _ in 0..1_000_000 {
                let (c, cancel) = with_timeout(&parent, HOUR);
                cancel.cancel();
                black_box(c);
            }
        }
        "tree" => {
            for _ in 0..20 {
                let (cancel, nodes) = polyctx_tree(10_000);
                cancel();
                drop(nodes);
            }
        }
        _ => eprintln!("profile one of: derive-cancel, tokio-derive-cancel, deadline, tree"),
    }
}

fn case<'a>(name: &'a str, f: impl FnMut(u64) -> Duration + 'a) -> Case<'a> {
    (name, Box::new(f))
}

/// A chain of `depth` value contexts, the wanted key at the top.
fn value_chain(depth: usize) -> (Key<u64>, Context) {
    let key = Key::new("wanted");
    let mut leaf = with_value(&Context::background(), &key, 1);
    for i in 1..depth {
        leaf = with_value(&leaf, &Key::new("other"), i as u64);
    }
    (key, leaf)
}

/// Time to cancel `n` trees of `size` nodes. Building and dropping a tree
/// are not timed.
/// A built tree: the call that cancels it, and the handles that keep it alive.
type Tree = (Box<dyn FnOnce()>, Box<dyn std::any::Any>);

fn per_node(n: u64, size: usize, tree: fn(usize) -> Tree) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let (cancel, nodes) = tree(size);
        let start = Instant::now();
        cancel();
        total += start.elapsed();
        drop(nodes);
    }
    total
}

/// A root with sqrt(size) children, each with as many children: `size` nodes below the root.
fn polyctx_tree(size: usize) -> Tree {
    let fan = (size as f64).sqrt() as usize;
    let (root, cancel) = with_cancel(&Context::background());
    let mut nodes = Vec::with_capacity(size);
    for _ in 0..fan {
        let (child, c) = with_cancel(&root);
        for _ in 0..(size / fan - 1) {
            nodes.push(with_cancel(&child));
        }
        nodes.push((child, c));
    }
    assert!(!nodes.iter().any(|(c, _)| c.is_done()));
    (Box::new(move || cancel.cancel()), Box::new(nodes))
}

fn tokio_tree(size: usize) -> Tree {
    let fan = (size as f64).sqrt() as usize;
    let root = CancellationToken::new();
    let mut nodes = Vec::with_capacity(size);
    for _ in 0..fan {
        let child = root.child_token();
        for _ in 0..(size / fan - 1) {
            nodes.push(child.child_token());
        }
        nodes.push(child);
    }
    (Box::new(move || root.cancel()), Box::new(nodes))
}

/// `n` rounds of: 10,000 tasks wait, one cancel wakes them all; the time from
/// the cancel until every task has finished.
const WAITERS: u32 = 10_000;

fn wake_waiters(n: u64, polyctx: bool) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut total = Duration::ZERO;
    for _ in 0..n {
        total += rt.block_on(async {
            let (ctx, cancel) = with_cancel(&Context::background());
            let token = CancellationToken::new();
            let parked = Arc::new(AtomicU32::new(0));
            let tasks: Vec<_> = (0..WAITERS)
                .map(|_| {
                    let parked = parked.clone();
                    if polyctx {
                        tokio::spawn(park_then_wait(ctx.done(), parked))
                    } else {
                        tokio::spawn(park_then_wait(token.clone().cancelled_owned(), parked))
                    }
                })
                .collect();
            // Every task has registered its waiter before the clock starts.
            while parked.load(Ordering::Acquire) < WAITERS {
                tokio::task::yield_now().await;
            }
            let start = Instant::now();
            if polyctx {
                cancel.cancel()
            } else {
                token.cancel()
            }
            for t in tasks {
                t.await.unwrap();
            }
            start.elapsed()
        });
    }
    total
}

/// Polls `wait` once (which registers its waiter), counts the task as
/// parked, then waits.
async fn park_then_wait<F: Future<Output = ()>>(wait: F, parked: Arc<AtomicU32>) {
    let mut wait = std::pin::pin!(wait);
    let ready = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_ready())).await;
    parked.fetch_add(1, Ordering::Release);
    if !ready {
        wait.await;
    }
}
