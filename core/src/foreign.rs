//! Values handed to the core by foreign code: bytes copied in, or a pointer
//! with the finalizer that frees it (wasmtime's C API pairs every piece of
//! foreign data with one). This is the value type behind C's `ctx_key_t`, so
//! every binding that stores through the C ABI's keys (C itself, Python)
//! stores one of these, and one key finds values stored from any of them.
//!
//! The core never dereferences a foreign pointer; it only keeps it, hands it
//! back, and calls its finalizer exactly once, when the value is dropped.

use std::borrow::Cow;
use std::ffi::c_void;
use std::fmt;

/// Frees a foreign pointer: called once, with the pointer, on whichever
/// thread drops the value.
pub type Finalizer = unsafe extern "C" fn(*mut c_void);

/// A value stored by foreign code (Go's `any` as C can hold it).
#[derive(Debug)]
pub enum ForeignValue {
    /// Bytes, copied in.
    Bytes(ForeignBytes),
    /// A pointer the core never dereferences, with its finalizer.
    Pointer(ForeignPtr),
}

impl ForeignValue {
    /// How `Display` shows the value inside a context's chain: bytes that
    /// are UTF-8 as their text (Go shows a string as itself), other bytes
    /// as `<bytes>`, a pointer as `<value>` (the core cannot look into it).
    pub fn describe(&self) -> Cow<'_, str> {
        match self {
            ForeignValue::Bytes(b) => match std::str::from_utf8(b.as_bytes()) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => Cow::Borrowed("<bytes>"),
            },
            ForeignValue::Pointer(_) => Cow::Borrowed("<value>"),
        }
    }
}

impl fmt::Display for ForeignValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Bytes copied from foreign code, kept with one NUL after them that is not
/// part of the value, so that C reads a stored string back as a C string.
pub struct ForeignBytes(Box<[u8]>);

impl ForeignBytes {
    /// A copy of `data`.
    pub fn new(data: &[u8]) -> ForeignBytes {
        let mut copy = Vec::with_capacity(data.len() + 1);
        copy.extend_from_slice(data);
        copy.push(0);
        ForeignBytes(copy.into_boxed_slice())
    }

    /// The bytes, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..self.0.len() - 1]
    }

    /// The first byte; `len()` bytes and then a NUL are readable from here
    /// for as long as `self` lives.
    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }

    /// The number of bytes, not counting the NUL.
    pub fn len(&self) -> usize {
        self.0.len() - 1
    }

    /// True for an empty value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for ForeignBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ForeignBytes").field(&self.as_bytes()).finish()
    }
}

/// Who stored a foreign pointer: a binding declares one `static Owner` and
/// tells its own values from anyone else's by it. Compared by address, which
/// a static has one of (unlike a function, whose pointer may differ from
/// one use to the next).
#[derive(Debug)]
pub struct Owner {
    /// For `Debug` only.
    pub name: &'static str,
}

/// A foreign pointer and its finalizer, which `Drop` calls exactly once.
pub struct ForeignPtr {
    ptr: *mut c_void,
    finalizer: Option<Finalizer>,
    owner: Option<&'static Owner>,
}

impl ForeignPtr {
    /// Takes over `ptr`: `finalizer` (if any) will be called with it exactly
    /// once, when this value is dropped.
    ///
    /// # Safety
    /// `finalizer(ptr)` must be sound to call once, from any thread, at any
    /// time after this call. What `ptr` points to must be safe to use from
    /// several threads at once, since anyone holding the value (on any
    /// thread) can read the pointer back.
    pub unsafe fn new(ptr: *mut c_void, finalizer: Option<Finalizer>) -> ForeignPtr {
        ForeignPtr {
            ptr,
            finalizer,
            owner: None,
        }
    }

    /// As [`ForeignPtr::new`], marked as stored by `owner`.
    ///
    /// # Safety
    /// As for [`ForeignPtr::new`].
    pub unsafe fn owned(ptr: *mut c_void, finalizer: Option<Finalizer>, owner: &'static Owner) -> ForeignPtr {
        ForeignPtr {
            ptr,
            finalizer,
            owner: Some(owner),
        }
    }

    /// The pointer, still owned by this value.
    pub fn as_ptr(&self) -> *mut c_void {
        self.ptr
    }

    /// True when `owner` stored this value (see [`ForeignPtr::owned`]).
    pub fn is_owned_by(&self, owner: &'static Owner) -> bool {
        self.owner.is_some_and(|o| std::ptr::eq(o, owner))
    }
}

// SAFETY: `new`'s contract: the finalizer may run on any thread, and the
// pointee may be used from any thread. The core itself never dereferences it.
unsafe impl Send for ForeignPtr {}
// SAFETY: as for `Send`; `&ForeignPtr` only gives out the pointer's value.
unsafe impl Sync for ForeignPtr {}

impl Drop for ForeignPtr {
    fn drop(&mut self) {
        if let Some(finalize) = self.finalizer {
            // SAFETY: whoever made this value handed `ptr` and `finalize`
            // over for exactly this call, once (`new`'s contract); `drop`
            // runs once.
            unsafe { finalize(self.ptr) }
        }
    }
}

impl fmt::Debug for ForeignPtr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignPtr")
            .field("ptr", &self.ptr)
            .field("finalizer", &self.finalizer.is_some())
            .field("owner", &self.owner.map(|o| o.name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static FINALIZED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(p: *mut c_void) {
        FINALIZED.fetch_add(p as usize, Ordering::Relaxed);
    }

    static MINE: Owner = Owner { name: "test" };
    static THEIRS: Owner = Owner { name: "other" };

    #[test]
    fn a_pointer_is_finalized_once_when_its_last_context_goes() {
        let key = crate::Key::<ForeignValue>::new("k");
        // SAFETY: `count` only adds the pointer's address to a counter.
        let value = ForeignValue::Pointer(unsafe {
            ForeignPtr::owned(std::ptr::without_provenance_mut(5), Some(count), &MINE)
        });
        let ctx = crate::with_value(&crate::Context::background(), &key, value);
        let child = crate::without_cancel(&ctx);
        drop(ctx);
        assert_eq!(FINALIZED.load(Ordering::Relaxed), 0);
        match child.value(&key) {
            Some(ForeignValue::Pointer(p)) => {
                assert_eq!(p.as_ptr().addr(), 5);
                assert!(p.is_owned_by(&MINE) && !p.is_owned_by(&THEIRS));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            child.to_string(),
            "context.Background.WithValue(k, <value>).WithoutCancel"
        );
        drop(child);
        assert_eq!(FINALIZED.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn bytes_keep_a_nul_after_them_and_show_as_text() {
        let b = ForeignBytes::new(b"req-42");
        assert_eq!((b.as_bytes(), b.len()), (&b"req-42"[..], 6));
        // SAFETY: `len() + 1` bytes are readable from `as_ptr()`.
        assert_eq!(unsafe { *b.as_ptr().add(6) }, 0);
        assert_eq!(ForeignValue::Bytes(b).to_string(), "req-42");
        assert_eq!(ForeignValue::Bytes(ForeignBytes::new(&[0xff])).to_string(), "<bytes>");
        let empty = ForeignBytes::new(&[]);
        assert!(empty.is_empty() && empty.as_bytes().is_empty());
    }
}
