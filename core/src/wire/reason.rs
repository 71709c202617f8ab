//! Why a request's context ended, across services: Go's two errors plus the
//! reasons a server sees, each mapped once to a gRPC status code, a Connect
//! error code and an HTTP status. Every binding uses this one table.

use std::fmt;

use crate::{Cause, Context, Error};

/// Why a request's context ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Canceled by its own code (Go's `Canceled`).
    Canceled,
    /// The budget ran out (Go's `DeadlineExceeded`).
    DeadlineExceeded,
    /// The client went away before the response was complete.
    ClientDisconnected,
    /// The peer canceled the call (a gRPC `RST_STREAM` with `CANCEL`, say).
    PeerCanceled,
    /// The server is shutting down.
    ServerShutdown,
    /// The response is complete; nothing more will be done for it.
    RequestFinished,
}

/// Every reason, in table order.
pub const END_REASONS: [EndReason; 6] = [
    EndReason::Canceled,
    EndReason::DeadlineExceeded,
    EndReason::ClientDisconnected,
    EndReason::PeerCanceled,
    EndReason::ServerShutdown,
    EndReason::RequestFinished,
];

impl EndReason {
    /// The gRPC status code (`CANCELLED` 1, `DEADLINE_EXCEEDED` 4, `UNAVAILABLE` 14).
    pub fn grpc_code(self) -> u32 {
        match self {
            EndReason::DeadlineExceeded => 4,
            EndReason::ServerShutdown => 14,
            _ => 1,
        }
    }

    /// The Connect error code.
    pub fn connect_code(self) -> &'static str {
        match self {
            EndReason::DeadlineExceeded => "deadline_exceeded",
            EndReason::ServerShutdown => "unavailable",
            _ => "canceled",
        }
    }

    /// The HTTP status: 504 for a spent budget, 503 for shutdown, and the
    /// de facto 499 ("client closed request") for the rest.
    pub fn http_status(self) -> u16 {
        match self {
            EndReason::DeadlineExceeded => 504,
            EndReason::ServerShutdown => 503,
            _ => 499,
        }
    }

    /// A stable lowercase name, the same in every language.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Canceled => "canceled",
            EndReason::DeadlineExceeded => "deadline_exceeded",
            EndReason::ClientDisconnected => "client_disconnected",
            EndReason::PeerCanceled => "peer_canceled",
            EndReason::ServerShutdown => "server_shutdown",
            EndReason::RequestFinished => "request_finished",
        }
    }

    /// The reason with this [`name`](EndReason::name).
    pub fn from_name(name: &str) -> Option<EndReason> {
        END_REASONS.into_iter().find(|r| r.name() == name)
    }

    /// This reason as a cause, to cancel a context with.
    pub fn cause(self) -> Cause {
        match self {
            EndReason::Canceled => Cause::from(Error::Canceled),
            EndReason::DeadlineExceeded => Cause::from(Error::DeadlineExceeded),
            other => Cause::new(other),
        }
    }

    /// Why `ctx` ended: its cause when that is an end reason or a context
    /// error (so `cancel(Some(EndReason::DeadlineExceeded.cause()))` reads
    /// back as `DeadlineExceeded`), else its error; `None` while it is live.
    pub fn of(ctx: &Context) -> Option<EndReason> {
        let cause = crate::cause(ctx)?;
        if let Some(reason) = cause.downcast_ref::<EndReason>() {
            return Some(*reason);
        }
        // A context canceled with `DeadlineExceeded.cause()` is `Canceled`
        // in Go's terms, but the reason given was the deadline.
        Some(match cause.as_context_error().or(ctx.err())? {
            Error::Canceled => EndReason::Canceled,
            Error::DeadlineExceeded => EndReason::DeadlineExceeded,
        })
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::Canceled => "context canceled",
            EndReason::DeadlineExceeded => "context deadline exceeded",
            EndReason::ClientDisconnected => "client disconnected",
            EndReason::PeerCanceled => "peer canceled the call",
            EndReason::ServerShutdown => "server shutting down",
            EndReason::RequestFinished => "request finished",
        })
    }
}

impl std::error::Error for EndReason {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{with_cancel_cause, with_timeout};
    use std::time::Duration;

    #[test]
    fn causes_survive_and_map() {
        let (ctx, cancel) = with_cancel_cause(&Context::background());
        assert_eq!(EndReason::of(&ctx), None);
        cancel.cancel(Some(EndReason::ClientDisconnected.cause()));
        assert_eq!(EndReason::of(&ctx), Some(EndReason::ClientDisconnected));
        assert_eq!(crate::cause(&ctx).unwrap().to_string(), "client disconnected");
        let (late, _c) = with_timeout(&Context::background(), Duration::ZERO);
        assert_eq!(EndReason::of(&late).map(EndReason::http_status), Some(504));
        for r in END_REASONS {
            assert_eq!(EndReason::from_name(r.name()), Some(r));
            let (ctx, cancel) = with_cancel_cause(&Context::background());
            cancel.cancel(Some(r.cause()));
            assert_eq!(EndReason::of(&ctx), Some(r), "canceled with {r:?}'s cause");
        }
        assert_eq!(EndReason::ServerShutdown.grpc_code(), 14);
    }
}
