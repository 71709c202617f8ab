//! One scenario's state and steps.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use polyctx::{
    after_func, cause, with_cancel, with_cancel_cause, with_deadline, with_deadline_cause, with_value, without_cancel,
    AfterFunc, CancelCauseFunc, CancelFunc, Cause, Context, Error, Key,
};

const PREFIXES: [&str; 3] = ["@c", "@py", "@node"];

enum Cancel {
    Plain(CancelFunc),
    Cause(CancelCauseFunc),
}

impl Cancel {
    fn cancel(&self) {
        match self {
            Cancel::Plain(f) => f.cancel(),
            Cancel::Cause(f) => f.cancel(None),
        }
    }
}

#[derive(Default)]
struct Runs {
    count: Mutex<usize>,
    changed: Condvar,
}

struct Scenario {
    t0: Instant,
    ctxs: HashMap<String, Context>,
    cancels: HashMap<String, Cancel>,
    keys: HashMap<String, Key<String>>,
    afters: HashMap<String, (AfterFunc, Arc<Runs>)>,
}

type Step = Result<Option<String>, String>;

/// Runs a scenario; returns its output lines, ending at the first step that fails.
pub fn run(name: &str, source: &str) -> Vec<String> {
    let mut s = Scenario {
        t0: Instant::now(),
        ctxs: HashMap::new(),
        cancels: HashMap::new(),
        keys: HashMap::new(),
        afters: HashMap::new(),
    };
    let mut out = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let mut toks: Vec<&str> = line.split_whitespace().collect();
        if toks.is_empty() || toks[0].starts_with('#') {
            continue;
        }
        let prefix = toks[0].strip_prefix('@').map(|_| toks.remove(0));
        let result = match prefix {
            Some(p) if !PREFIXES.contains(&p) => Err(format!("unknown prefix {p}")),
            _ => s.step(&toks),
        };
        let head = format!("{name}:{} {}", i + 1, toks.join(" "));
        match result {
            Ok(Some(r)) => out.push(format!("{head} => {r}")),
            Ok(None) => {}
            Err(e) => {
                out.push(format!("{head} => error:{e}"));
                break;
            }
        }
    }
    for cancel in s.cancels.values() {
        cancel.cancel();
    }
    out
}

/// A signed duration in nanoseconds: `-?<digits><ns|us|ms|s|m|h>`.
fn duration(tok: &str) -> Result<i128, String> {
    let (neg, body) = tok.strip_prefix('-').map_or((false, tok), |b| (true, b));
    let split = body
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("bad duration {tok}"))?;
    let (digits, unit) = body.split_at(split);
    let n: i128 = digits.parse().map_err(|_| format!("bad duration {tok}"))?;
    let scale = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(format!("bad duration {tok}")),
    };
    Ok(if neg { -n * scale } else { n * scale })
}

fn shift(at: Instant, ns: i128) -> Instant {
    let d = Duration::from_nanos(ns.unsigned_abs() as u64);
    if ns >= 0 {
        at + d
    } else {
        at.checked_sub(d).unwrap_or(at)
    }
}

fn err_name(e: Option<Error>) -> &'static str {
    match e {
        None => "nil",
        Some(Error::Canceled) => "canceled",
        Some(Error::DeadlineExceeded) => "deadline_exceeded",
    }
}

impl Scenario {
    fn ctx(&self, name: &str) -> Result<&Context, String> {
        self.ctxs.get(name).ok_or_else(|| format!("unknown context {name}"))
    }

    fn key(&mut self, name: &str) -> Key<String> {
        self.keys
            .entry(name.to_string())
            .or_insert_with(|| Key::new(name.to_string()))
            .clone()
    }

    fn add(&mut self, name: &str, ctx: Context, cancel: Option<Cancel>) -> Step {
        if self.ctxs.contains_key(name) {
            return Err(format!("context {name} already exists"));
        }
        self.ctxs.insert(name.to_string(), ctx);
        if let Some(c) = cancel {
            self.cancels.insert(name.to_string(), c);
        }
        Ok(None)
    }

    fn deadline_child(&mut self, t: &[&str], at: Instant) -> Step {
        let parent = self.ctx(t[2])?;
        let (ctx, cancel) = match t.get(4) {
            Some(msg) => with_deadline_cause(parent, at, Cause::msg(*msg)),
            None => with_deadline(parent, at),
        };
        self.add(t[1], ctx, Some(Cancel::Plain(cancel)))
    }

    fn step(&mut self, t: &[&str]) -> Step {
        let arity = |n: usize| {
            if t.len() == n {
                Ok(())
            } else {
                Err(format!("{} wants {} arguments", t[0], n - 1))
            }
        };
        match t[0] {
            "background" | "todo" => {
                arity(2)?;
                let root = if t[0] == "todo" {
                    Context::todo()
                } else {
                    Context::background()
                };
                self.add(t[1], root, None)
            }
            "with_cancel" => {
                arity(3)?;
                let (ctx, cancel) = with_cancel(self.ctx(t[2])?);
                self.add(t[1], ctx, Some(Cancel::Plain(cancel)))
            }
            "with_cancel_cause" => {
                arity(3)?;
                let (ctx, cancel) = with_cancel_cause(self.ctx(t[2])?);
                self.add(t[1], ctx, Some(Cancel::Cause(cancel)))
            }
            "with_timeout" | "with_deadline" => {
                if t.len() != 4 && t.len() != 5 {
                    return Err(format!("{} wants 3 or 4 arguments", t[0]));
                }
                let base = if t[0] == "with_timeout" {
                    Instant::now()
                } else {
                    self.t0
                };
                self.deadline_child(t, shift(base, duration(t[3])?))
            }
            "with_value" => {
                arity(5)?;
                let key = self.key(t[3]);
                let ctx = with_value(self.ctx(t[2])?, &key, t[4].to_string());
                self.add(t[1], ctx, None)
            }
            "without_cancel" => {
                arity(3)?;
                let ctx = without_cancel(self.ctx(t[2])?);
                self.add(t[1], ctx, None)
            }
            "chain" => {
                arity(5)?;
                self.chain(t[1], t[2], t[3], t[4])
            }
            "cancel" => {
                arity(2)?;
                self.cancels
                    .get(t[1])
                    .ok_or_else(|| format!("{} has no cancel function", t[1]))?
                    .cancel();
                Ok(None)
            }
            "cancel_cause" => {
                arity(3)?;
                match self.cancels.get(t[1]) {
                    Some(Cancel::Cause(f)) => f.cancel(Some(Cause::msg(t[2]))),
                    _ => return Err(format!("{} has no cancel-cause function", t[1])),
                }
                Ok(None)
            }
            "after_func" => {
                arity(3)?;
                if self.afters.contains_key(t[1]) {
                    return Err(format!("after-func {} already exists", t[1]));
                }
                let runs = Arc::new(Runs::default());
                let r = runs.clone();
                let stop = after_func(self.ctx(t[2])?, move || {
                    *r.count.lock().unwrap() += 1;
                    r.changed.notify_all();
                });
                self.afters.insert(t[1].to_string(), (stop, runs));
                Ok(None)
            }
            _ => self.observe(t).map(Some),
        }
    }

    fn chain(&mut self, name: &str, parent: &str, kind: &str, n: &str) -> Step {
        let n: usize = n.parse().ok().filter(|&n| n >= 1).ok_or("bad chain length")?;
        let mut ctx = self.ctx(parent)?.clone();
        let mut last_cancel = None;
        let value = |spec: &str| spec.split_once(':').map(|(k, v)| (k.to_string(), v.to_string()));
        let (every, top) = match kind {
            "cancel" => (None, None),
            _ => match kind.split_once(':') {
                Some(("value", rest)) => (Some(value(rest).ok_or("bad chain kind")?), None),
                Some(("value_top", rest)) => (None, Some(value(rest).ok_or("bad chain kind")?)),
                _ => return Err(format!("bad chain kind {kind}")),
            },
        };
        for i in 0..n {
            if let Some((k, v)) = every.as_ref().or(top.as_ref().filter(|_| i == 0)) {
                let key = self.key(k);
                ctx = with_value(&ctx, &key, v.clone());
                last_cancel = None;
            } else {
                let (c, cancel) = with_cancel(&ctx);
                ctx = c;
                last_cancel = Some(Cancel::Plain(cancel));
            }
        }
        self.add(name, ctx, last_cancel)
    }

    fn observe(&mut self, t: &[&str]) -> Result<String, String> {
        let want = |n: usize| {
            if t.len() == n {
                Ok(())
            } else {
                Err(format!("{} wants {} arguments", t[0], n - 1))
            }
        };
        let yes_no = |b: bool| if b { "true" } else { "false" }.to_string();
        match t[0] {
            "err" => {
                want(2)?;
                Ok(err_name(self.ctx(t[1])?.err()).into())
            }
            "cause" => {
                want(2)?;
                Ok(match cause(self.ctx(t[1])?) {
                    None => "nil".into(),
                    Some(c) => match c.as_context_error() {
                        Some(e) => err_name(Some(e)).into(),
                        None => format!("msg:{c}"),
                    },
                })
            }
            "done" => {
                want(2)?;
                Ok(yes_no(self.ctx(t[1])?.is_done()))
            }
            "deadline" => {
                want(2)?;
                Ok(if self.ctx(t[1])?.deadline().is_some() {
                    "set"
                } else {
                    "none"
                }
                .into())
            }
            "deadline_cmp" => {
                want(3)?;
                Ok(match (self.ctx(t[1])?.deadline(), self.ctx(t[2])?.deadline()) {
                    (Some(a), Some(b)) => match a.cmp(&b) {
                        std::cmp::Ordering::Less => "before",
                        std::cmp::Ordering::Equal => "equal",
                        std::cmp::Ordering::Greater => "after",
                    },
                    _ => "none",
                }
                .into())
            }
            "deadline_within" => {
                want(3)?;
                let limit = shift(Instant::now(), duration(t[2])?);
                Ok(yes_no(self.ctx(t[1])?.deadline().is_some_and(|d| d <= limit)))
            }
            "value" => {
                want(3)?;
                let key = self.key(t[2]);
                Ok(self.ctx(t[1])?.value(&key).cloned().unwrap_or_else(|| "nil".into()))
            }
            "wait" => {
                want(3)?;
                let ns = duration(t[2])?;
                let ctx = self.ctx(t[1])?;
                Ok(yes_no(
                    ctx.is_done() || (ns > 0 && ctx.wait_timeout(Duration::from_nanos(ns as u64))),
                ))
            }
            "stop" => {
                want(2)?;
                let (stop, _) = self
                    .afters
                    .get(t[1])
                    .ok_or_else(|| format!("unknown after-func {}", t[1]))?;
                Ok(yes_no(stop.stop()))
            }
            "ran" | "runs" => {
                want(if t[0] == "ran" { 3 } else { 2 })?;
                let (_, runs) = self
                    .afters
                    .get(t[1])
                    .ok_or_else(|| format!("unknown after-func {}", t[1]))?;
                let count = runs.count.lock().unwrap();
                if t[0] == "runs" {
                    return Ok(count.to_string());
                }
                let ns = duration(t[2])?.max(0) as u64;
                let (count, _) = runs
                    .changed
                    .wait_timeout_while(count, Duration::from_nanos(ns), |c| *c == 0)
                    .unwrap();
                Ok(yes_no(*count > 0))
            }
            other => Err(format!("unknown operation {other}")),
        }
    }
}
