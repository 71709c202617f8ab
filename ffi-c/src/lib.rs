//! The C ABI of polyctx: `libctx.so`, `libctx.a` and `include/ctx.h`.
//!
//! This crate translates; the core decides. Each function converts its
//! arguments (the public [`handle`] module owns every pointer conversion,
//! and is what other crates in the process use to hand handles to C and
//! take them back), calls the core, and converts the result. Every body runs inside
//! [`status::boundary`], so a panic returns `CTX_EPANIC` instead of
//! unwinding into C, and every pointer argument goes through [`status::arg!`].
//! The doc comments of the exported items are copied into `include/ctx.h` by
//! `gen-header`; they are the C documentation, so they speak C.
#![allow(non_camel_case_types)]
// The safety contracts are the header's ownership and thread rules, written
// in C terms in each function's documentation.
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

// In the order of the header (blank lines keep rustfmt from sorting them).
mod context;

mod cancel;

mod value;

mod notify;

mod codec;

mod wire;

mod patterns;

mod debug;

mod status;

pub mod handle;

/// The header's context, cancel, value, after-func and diagnostics
/// functions as Rust, for crates in the same process that call the C ABI
/// itself rather than hand handles over (`handle`): the benchmarks time C's
/// calls beside the core's in one process this way, and the `c_abi_ops`
/// fuzz target drives random sequences of them.
pub mod abi {
    pub use crate::cancel::*;
    pub use crate::context::*;
    pub use crate::debug::{
        ctx_debug_live_contexts, ctx_debug_live_timers, ctx_debug_pending_after_funcs, ctx_debug_track,
    };
    pub use crate::handle::{ctx_after_func_t, ctx_cancel_t, ctx_key_t, ctx_t};
    pub use crate::notify::{ctx_after_func, ctx_after_func_release, ctx_after_func_stop};
    pub use crate::status::{ctx_err_t, ctx_status_t};
    pub use crate::value::{ctx_key_new, ctx_key_release, ctx_value, ctx_value_kind_t, ctx_with_value_bytes};
}

pub use codec::{CTX_TIMEOUT_MAX_LEN, CTX_TRACEPARENT_LEN, CTX_TRACE_FLAG_RANDOM, CTX_TRACE_FLAG_SAMPLED};
