//! Why a context is done: the two errors every context can report, and the
//! cause a canceller may attach.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The error of a done context, as returned by [`Context::err`](crate::Context::err).
///
/// Exactly Go's `context.Canceled` and `context.DeadlineExceeded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The context was canceled: by its cancel function or an ancestor's.
    Canceled,
    /// The context's deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl Error {
    /// True for [`Error::DeadlineExceeded`], which is a timeout (Go's `Timeout()`).
    pub fn is_timeout(self) -> bool {
        self == Error::DeadlineExceeded
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for Error {}

/// An error explaining why a context was canceled, as returned by [`cause`](crate::cause).
///
/// Cheap to clone (one reference count). Any `Error + Send + Sync` can be a
/// cause; [`Cause::msg`] makes one from a message (Go's `errors.New`), which is
/// also how causes travel between languages.
#[derive(Clone)]
pub struct Cause(Arc<Boxed>);

// A thin pointer (the box inside the `Arc`), so that every context can afford
// a cause slot of one word.
type Boxed = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Cause {
    /// Wraps any error as a cause.
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Cause(Arc::new(Box::new(error)))
    }

    /// A cause carrying only a message, like Go's `errors.New(message)`.
    pub fn msg(message: impl Into<String>) -> Self {
        Cause::new(Message {
            text: message.into(),
            code: None,
            payload: None,
        })
    }

    /// A cause carrying a message and an application-defined integer code
    /// (the form C callers use).
    pub fn with_code(message: impl Into<String>, code: i64) -> Self {
        Cause::new(Message {
            text: message.into(),
            code: Some(code),
            payload: None,
        })
    }

    /// A cause that carries a binding's own object (a Python exception, a
    /// JS value) beside its message. Every other language reads the message;
    /// the binding that made it finds its object again with [`Cause::payload`].
    pub fn with_payload<P: Any + Send + Sync>(message: impl Into<String>, payload: P) -> Self {
        Cause::new(Message {
            text: message.into(),
            code: None,
            payload: Some(Box::new(payload)),
        })
    }

    /// The object given to [`Cause::with_payload`], if it is a `P`.
    pub fn payload<P: Any>(&self) -> Option<&P> {
        self.downcast_ref::<Message>()?.payload.as_ref()?.downcast_ref::<P>()
    }

    /// The underlying error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }

    /// The context error this cause is, when it is one (the cause of a context
    /// canceled without an explicit cause is its error).
    pub fn as_context_error(&self) -> Option<Error> {
        self.downcast_ref::<Error>().copied()
    }

    /// The integer code of a cause made by [`Cause::with_code`].
    pub fn code(&self) -> Option<i64> {
        self.downcast_ref::<Message>().and_then(|m| m.code)
    }

    /// The underlying error.
    pub fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &**self.0
    }

    /// True when both are the same cause object (not merely equal text).
    pub fn ptr_eq(&self, other: &Cause) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The shared cause object for a context error, so that reporting a
    /// missing cause never allocates.
    pub(crate) fn of(error: Error) -> Cause {
        static CANCELED: LazyLock<Cause> = LazyLock::new(|| Cause::new(Error::Canceled));
        static DEADLINE: LazyLock<Cause> = LazyLock::new(|| Cause::new(Error::DeadlineExceeded));
        match error {
            Error::Canceled => CANCELED.clone(),
            Error::DeadlineExceeded => DEADLINE.clone(),
        }
    }
}

impl From<Error> for Cause {
    fn from(error: Error) -> Self {
        Cause::of(error)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The error behind [`Cause::msg`], [`Cause::with_code`] and [`Cause::with_payload`].
pub struct Message {
    text: String,
    code: Option<i64>,
    payload: Option<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("text", &self.text)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl Message {
    /// The message text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The integer code, when one was given.
    pub fn code(&self) -> Option<i64> {
        self.code
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_travels_beside_the_message() {
        struct Exception(u32);
        let cause = Cause::with_payload("boom", Exception(7));
        assert_eq!(cause.to_string(), "boom");
        assert_eq!(cause.payload::<Exception>().map(|e| e.0), Some(7));
        assert!(cause.payload::<String>().is_none());
        assert!(Cause::msg("plain").payload::<Exception>().is_none());
        assert_eq!(Cause::with_code("coded", 3).code(), Some(3));
    }
}
