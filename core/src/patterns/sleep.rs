//! Sleeping, and waiting for anything, as long as a context allows.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use crate::{with_timeout, CancelGuard, Context, Done, Error};

/// Sleeps for `d`, or until `ctx` is done, whichever is first: `Err` with
/// the context's error if it ended the sleep. Blocks the thread.
pub fn sleep(ctx: &Context, d: Duration) -> Result<(), Error> {
    match ctx.wait_timeout(d) {
        true => Err(ctx.err().unwrap_or(Error::Canceled)),
        false => Ok(()),
    }
}

/// [`sleep`] as a future, for any executor: it sleeps on polyctx's own
/// timer, so it needs no async runtime. Dropping it disarms the timer.
pub fn sleep_async(ctx: &Context, d: Duration) -> Sleep {
    let (timer, cancel) = with_timeout(ctx, d);
    Sleep {
        parent: ctx.clone(),
        done: timer.done(),
        _timer: cancel.guard(),
    }
}

/// The future returned by [`sleep_async`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Sleep {
    parent: Context,
    done: Done,
    _timer: CancelGuard,
}

impl Future for Sleep {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        std::task::ready!(Pin::new(&mut self.done).poll(cx));
        Poll::Ready(match self.parent.err() {
            Some(err) => Err(err),
            None => Ok(()),
        })
    }
}

/// Runs `fut` until it completes or `ctx` is done, whichever is first:
/// `Err` with the context's error if the context ended it (and `fut` is
/// dropped, unfinished).
pub async fn with_context<F: Future>(ctx: &Context, fut: F) -> Result<F::Output, Error> {
    let mut fut = std::pin::pin!(fut);
    let mut done = ctx.done();
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match Pin::new(&mut done).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(ctx.err().unwrap_or(Error::Canceled))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
