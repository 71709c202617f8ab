//! Request-scoped values and the typed, identity-unique keys that find them.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A key for [`with_value`](crate::with_value), unique by identity.
///
/// Two keys never collide, even with the same name and type: this is Go's
/// unexported-key-type pattern, enforced. Clones of a key are the same key.
/// The name is only for `Display`. A key is typically created once:
///
/// ```
/// use std::sync::LazyLock;
/// static TRACE_ID: LazyLock<polyctx::Key<String>> =
///     LazyLock::new(|| polyctx::Key::new("trace-id"));
/// ```
pub struct Key<T> {
    id: Arc<KeyId>,
    _type: PhantomData<fn() -> T>,
}

/// The identity of a key; its address is what lookups compare.
pub(crate) struct KeyId {
    name: Cow<'static, str>,
}

impl KeyId {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl<T> Key<T> {
    /// A new key, distinct from every other key.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Key {
            id: Arc::new(KeyId { name: name.into() }),
            _type: PhantomData,
        }
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.id.name
    }

    pub(crate) fn id(&self) -> &Arc<KeyId> {
        &self.id
    }
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        Key {
            id: self.id.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> PartialEq for Key<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.id, &other.id)
    }
}

impl<T> Eq for Key<T> {}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?} @ {:p})", self.name(), Arc::as_ptr(&self.id))
    }
}

/// A stored value: anything `Send + Sync`, remembering its type name for `Display`.
pub(crate) trait Stored: Any + Send + Sync {
    fn type_name(&self) -> &'static str;
}

impl<T: Any + Send + Sync> Stored for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// How Go's `String()` shows a value: strings as themselves, anything else
/// by its type name; a foreign value as it describes itself.
pub(crate) fn describe(value: &dyn Stored) -> Cow<'_, str> {
    let any: &dyn Any = value;
    if let Some(s) = any.downcast_ref::<String>() {
        Cow::Borrowed(s)
    } else if let Some(s) = any.downcast_ref::<&'static str>() {
        Cow::Borrowed(s)
    } else if let Some(v) = any.downcast_ref::<crate::ForeignValue>() {
        v.describe()
    } else {
        Cow::Borrowed(value.type_name())
    }
}
