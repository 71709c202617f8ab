//! A group of tasks under one derived context (Go's `errgroup.WithContext`):
//! the first error cancels the rest, with that error as the cause; waiting
//! waits for all; an optional limit bounds how many run at once. Nothing
//! outlives the group: when it returns, every task has finished and its
//! context is canceled.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use crate::{with_cancel_cause, CancelCauseFunc, Cause, Context};

/// Runs a group of threads: `body` spawns tasks with [`Scope::spawn`]; each
/// gets the group's context. Returns once every task has finished: `Ok`, or
/// the first error. The first error cancels the group's context (its cause
/// is the error's text), so the other tasks can stop early.
pub fn scope<'env, E, R>(
    parent: &Context,
    limit: Option<usize>,
    body: impl for<'scope> FnOnce(&Scope<'scope, 'env, E>) -> R,
) -> Result<R, E>
where
    E: std::fmt::Display + Send + 'env,
{
    let (ctx, cancel) = with_cancel_cause(parent);
    let shared = Arc::new(Shared {
        ctx,
        cancel,
        first_error: Mutex::new(None),
        running: Mutex::new(0),
        slot_free: Condvar::new(),
        limit,
    });
    let out = std::thread::scope(|s| {
        body(&Scope {
            threads: s,
            shared: shared.clone(),
        })
    });
    // Every task has been joined; nothing waits on the context any more.
    shared.cancel.cancel(None);
    let first = shared.first_error.lock().unwrap_or_else(PoisonError::into_inner).take();
    match first {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

struct Shared<E> {
    ctx: Context,
    cancel: CancelCauseFunc,
    first_error: Mutex<Option<E>>,
    running: Mutex<usize>,
    slot_free: Condvar,
    limit: Option<usize>,
}

impl<E: std::fmt::Display> Shared<E> {
    fn fail(&self, e: E) {
        let mut first = self.first_error.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            self.cancel.cancel(Some(Cause::msg(e.to_string())));
            *first = Some(e);
        }
    }
}

/// Spawns the tasks of a [`scope`].
pub struct Scope<'scope, 'env, E> {
    threads: &'scope std::thread::Scope<'scope, 'env>,
    shared: Arc<Shared<E>>,
}

impl<'scope, 'env, E: std::fmt::Display + Send + 'env> Scope<'scope, 'env, E> {
    /// The group's context: done when the parent is, or at the first error.
    pub fn context(&self) -> &Context {
        &self.shared.ctx
    }

    /// Runs `task` on a thread of its own, with the group's context. With a
    /// limit, blocks until fewer than the limit are running (Go's `SetLimit`).
    pub fn spawn<F>(&self, task: F)
    where
        F: FnOnce(&Context) -> Result<(), E> + Send + 'scope,
    {
        let shared = self.shared.clone();
        if let Some(limit) = shared.limit {
            let running = shared.running.lock().unwrap_or_else(PoisonError::into_inner);
            let mut running = shared
                .slot_free
                .wait_while(running, |n| *n >= limit.max(1))
                .unwrap_or_else(PoisonError::into_inner);
            *running += 1;
        }
        self.threads.spawn(move || {
            if let Err(e) = task(&shared.ctx) {
                shared.fail(e);
            }
            if shared.limit.is_some() {
                *shared.running.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
                shared.slot_free.notify_one();
            }
        });
    }
}

/// The futures form, for any executor: runs every future of `tasks` (each
/// made from the group's context) at once in one task, until all finish or
/// one fails; the first error cancels the group's context, and the futures
/// still pending are polled until they return (they should stop early, as
/// their context is done). Resolves to the first error, or the outputs.
pub async fn join_all<T, E, F, Fut>(parent: &Context, tasks: impl IntoIterator<Item = F>) -> Result<Vec<T>, E>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let (ctx, cancel) = with_cancel_cause(parent);
    let _cancel = cancel.clone().guard(); // the group's context ends with the group
    let mut pending: Vec<Pin<Box<Fut>>> = tasks.into_iter().map(|f| Box::pin(f(ctx.clone()))).collect();
    let mut outputs: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    let mut finished = vec![false; pending.len()];
    let mut first_error: Option<E> = None;
    std::future::poll_fn(|cx: &mut TaskContext<'_>| {
        for (i, fut) in pending.iter_mut().enumerate() {
            if finished[i] {
                continue;
            }
            if let Poll::Ready(result) = fut.as_mut().poll(cx) {
                finished[i] = true;
                match result {
                    Ok(v) => outputs[i] = Some(v),
                    Err(e) if first_error.is_none() => {
                        cancel.cancel(Some(Cause::msg(e.to_string())));
                        first_error = Some(e);
                    }
                    Err(_) => {}
                }
            }
        }
        if finished.iter().all(|&f| f) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    match first_error {
        Some(e) => Err(e),
        None => Ok(outputs.into_iter().map(|o| o.expect("every task finished")).collect()),
    }
}
