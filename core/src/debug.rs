//! Diagnostics Go never had: the classic context bugs, visible at run time.
//!
//! - **Lost cancels.** A cancelable context freed while still live was never
//!   canceled and never reached its deadline: its cancel function was
//!   dropped uncalled (Go's `vet` calls this `lostcancel`). Counted always,
//!   at no cost on the hot path (the count is taken where a live context is
//!   unhooked, which already takes locks), and reported to a hook if one is
//!   set.
//! - **Live contexts.** With tracking on, every context created from then on
//!   is registered with its kind, creation time and creation site, so a test
//!   can assert that nothing is left running and a debug endpoint can print
//!   the live tree. Off by default; off, it costs one relaxed load when a
//!   context is made and one when it is freed.

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::node::{error_of, Kind, Node};
use crate::{clock, Context, Error};

// Lost cancels ---------------------------------------------------------------

static LOST: AtomicU64 = AtomicU64::new(0);

/// What a lost-cancel hook is told.
#[derive(Clone, Debug)]
pub struct LostCancel {
    /// The context as Go's `String()` prints it.
    pub context: String,
    /// Where it was made, if tracking was on then (see [`track`]) or a
    /// binding recorded it.
    pub site: Option<String>,
}

type Hook = Box<dyn Fn(&LostCancel) + Send + Sync>;

/// Shared, so that it is called with no lock held (it may set the hook, or
/// free contexts) and dropped outside the lock too.
static HOOK: RwLock<Option<Arc<Hook>>> = RwLock::new(None);
static HOOKED: AtomicBool = AtomicBool::new(false);

/// How many cancelable contexts have been freed while still live, process-wide.
pub fn lost_cancels() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// Calls `hook` for every lost cancel from now on (`None` removes it). The
/// hook runs on the thread that dropped the last handle, with no polyctx
/// lock held (it may set the hook, and free contexts); it must not panic,
/// and should be quick. A call under way on another thread may still
/// finish with the hook this replaces.
pub fn set_lost_cancel_hook(hook: Option<Hook>) {
    let old = {
        let mut slot = HOOK.write().unwrap_or_else(PoisonError::into_inner);
        HOOKED.store(hook.is_some(), Ordering::Relaxed);
        std::mem::replace(&mut *slot, hook.map(Arc::new))
    };
    drop(old); // its captures' destructors run with no lock held
}

/// Called by the tree for a cancelable node whose last reference is gone
/// while it is still live. The node is unhooked but not yet freed.
pub(crate) fn lost_cancel(node: &Node) {
    LOST.fetch_add(1, Ordering::Relaxed);
    if !HOOKED.load(Ordering::Relaxed) {
        return;
    }
    let report = LostCancel {
        context: crate::display::chain(node),
        site: tracked_site(node),
    };
    let hook = HOOK.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(hook) = hook {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&report)));
    }
}

// Live contexts --------------------------------------------------------------

static TRACKING: AtomicBool = AtomicBool::new(false);
/// Set once tracking has ever been on: frees must then unregister.
static EVER_TRACKED: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const SHARDS: usize = 16;

struct Entry {
    id: u64,
    created: Instant,
    site: Option<String>,
}

static REGISTRY: [Mutex<Option<HashMap<usize, Entry>>>; SHARDS] = [const { Mutex::new(None) }; SHARDS];

fn shard(addr: usize) -> &'static Mutex<Option<HashMap<usize, Entry>>> {
    &REGISTRY[(addr >> 4).wrapping_mul(0x9E37_79B9) % SHARDS]
}

/// Turns tracking of live contexts on or off. Contexts made while it is on
/// stay tracked until they are freed.
pub fn track(on: bool) {
    if on {
        EVER_TRACKED.store(true, Ordering::Relaxed);
    }
    TRACKING.store(on, Ordering::Relaxed);
}

/// Whether contexts made now are tracked.
pub fn is_tracking() -> bool {
    TRACKING.load(Ordering::Relaxed)
}

/// Records where `ctx` was made, for bindings whose callers' sites the core
/// cannot see (a Python file and line, a JS stack frame). Only for tracked
/// contexts; otherwise does nothing.
pub fn set_site(ctx: &Context, site: impl Into<String>) {
    let addr = ctx.node.as_ptr().as_ptr().addr();
    let mut shard = shard(addr).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = shard.as_mut().and_then(|m| m.get_mut(&addr)) {
        entry.site = Some(site.into());
    }
}

/// Registers a node just made, if tracking is on.
#[inline]
pub(crate) fn created(node: *const Node, site: &'static Location<'static>) {
    if TRACKING.load(Ordering::Relaxed) {
        register(node.addr(), site);
    }
}

#[cold]
fn register(addr: usize, site: &'static Location<'static>) {
    let entry = Entry {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        created: Instant::now(),
        site: Some(format!("{}:{}", site.file(), site.line())),
    };
    let mut shard = shard(addr).lock().unwrap_or_else(PoisonError::into_inner);
    shard.get_or_insert_with(HashMap::new).insert(addr, entry);
}

/// Unregisters a node about to be freed.
#[inline]
pub(crate) fn freed(node: *const Node) {
    if EVER_TRACKED.load(Ordering::Relaxed) {
        unregister(node.addr());
    }
}

#[cold]
fn unregister(addr: usize) {
    let mut shard = shard(addr).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(map) = shard.as_mut() {
        map.remove(&addr);
    }
}

fn tracked_site(node: &Node) -> Option<String> {
    if !EVER_TRACKED.load(Ordering::Relaxed) {
        return None;
    }
    let addr = std::ptr::from_ref(node).addr();
    let shard = shard(addr).lock().unwrap_or_else(PoisonError::into_inner);
    shard.as_ref()?.get(&addr)?.site.clone()
}

/// One tracked live context.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub id: u64,
    /// The id of its parent, if the parent is tracked too.
    pub parent: Option<u64>,
    /// `WithCancel`, `WithDeadline`, `WithValue` or `WithoutCancel`.
    pub kind: &'static str,
    pub age: Duration,
    /// Time left until its deadline (negative: past), if it has one.
    pub deadline_in: Option<Duration>,
    pub deadline_past: bool,
    pub err: Option<Error>,
    pub site: Option<String>,
}

/// The tracked contexts alive now, oldest first. `Display` prints them as a tree.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub contexts: Vec<Tracked>,
}

/// A snapshot of the tracked live contexts.
pub fn snapshot() -> Snapshot {
    let now = Instant::now();
    let now_ns = clock::now_ns();
    let mut found: Vec<(usize, usize, Tracked)> = Vec::new();
    for shard in &REGISTRY {
        let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(map) = shard.as_ref() else { continue };
        for (&addr, entry) in map {
            // SAFETY: a registered node is unregistered (under this shard's
            // lock, which is held) before it is freed, so it is alive. Only
            // its immutable fields and atomics are read.
            let node = unsafe { &*(addr as *const Node) };
            let parent = node.parent().map_or(0, |p| p.as_ptr().as_ptr().addr());
            let kind = match &node.kind {
                Kind::Cancel(c) if c.own_deadline => "WithDeadline",
                Kind::Cancel(_) => "WithCancel",
                Kind::Value(_) => "WithValue",
                Kind::WithoutCancel => "WithoutCancel",
                Kind::Background => "Background",
                Kind::Todo => "TODO",
            };
            let deadline = node
                .signal()
                .map(|s| s.cancel_part().deadline)
                .filter(|&d| d != clock::NEVER);
            found.push((
                addr,
                parent,
                Tracked {
                    id: entry.id,
                    parent: None,
                    kind,
                    age: now.saturating_duration_since(entry.created),
                    deadline_in: deadline.map(|d| Duration::from_nanos(d.abs_diff(now_ns))),
                    deadline_past: deadline.is_some_and(|d| d <= now_ns),
                    err: error_of(node.state()),
                    site: entry.site.clone(),
                },
            ));
        }
    }
    let ids: HashMap<usize, u64> = found.iter().map(|(addr, _, t)| (*addr, t.id)).collect();
    let mut contexts: Vec<Tracked> = found
        .into_iter()
        .map(|(_, parent, mut t)| {
            t.parent = ids.get(&parent).copied();
            t
        })
        .collect();
    contexts.sort_by_key(|t| t.id);
    Snapshot { contexts }
}

impl Snapshot {
    /// How many tracked contexts are alive.
    pub fn len(&self) -> usize {
        self.contexts.len()
    }

    /// True when no tracked context is alive.
    pub fn is_empty(&self) -> bool {
        self.contexts.is_empty()
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn line(f: &mut fmt::Formatter<'_>, t: &Tracked, depth: usize) -> fmt::Result {
            write!(
                f,
                "{:indent$}#{} {} age {:?}",
                "",
                t.id,
                t.kind,
                t.age,
                indent = depth * 2
            )?;
            if let Some(d) = t.deadline_in {
                write!(f, ", deadline {}{d:?}", if t.deadline_past { "-" } else { "" })?;
            }
            if let Some(e) = t.err {
                write!(f, ", {e}")?;
            }
            if let Some(site) = &t.site {
                write!(f, ", made at {site}")?;
            }
            writeln!(f)
        }
        let mut children: HashMap<Option<u64>, Vec<&Tracked>> = HashMap::new();
        for t in &self.contexts {
            children.entry(t.parent).or_default().push(t);
        }
        // Iterative, so that a deep chain prints without recursing.
        let roots = children.get(&None).map_or(&[][..], Vec::as_slice);
        let mut stack: Vec<(&Tracked, usize)> = roots.iter().rev().map(|t| (*t, 0)).collect();
        while let Some((t, depth)) = stack.pop() {
            line(f, t, depth)?;
            if let Some(kids) = children.get(&Some(t.id)) {
                stack.extend(kids.iter().rev().map(|c| (*c, depth + 1)));
            }
        }
        Ok(())
    }
}
