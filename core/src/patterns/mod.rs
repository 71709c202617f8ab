//! The patterns every service writes around contexts (the article's
//! fan-out, retries, sleeps), written once: a group of tasks under one
//! context, retry with backoff under one budget, and sleeping or waiting as
//! long as a context allows.

mod group;
mod retry;
mod sleep;

pub use group::{join_all, scope, Scope};
pub use retry::{retry, Backoff, Failure, GiveUp, Next, RetryError};
pub use sleep::{sleep, sleep_async, with_context, Sleep};
