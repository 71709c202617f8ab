//! `polyctx._native`: the polyctx core for Python. The public API, with the
//! asyncio glue, is the pure-Python package `polyctx` in `python/polyctx/`.

mod after;
mod cabi;
mod call;
mod cancel;
mod cause;
mod context;
mod debug;
mod gc;
mod patterns;
mod scope;
mod waker;
mod wire;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<context::Context>()?;
    m.add_class::<context::Key>()?;
    m.add_class::<cancel::CancelFunc>()?;
    m.add_class::<cancel::CancelCauseFunc>()?;
    m.add_class::<after::StopFunc>()?;
    m.add_class::<waker::Waker>()?;
    m.add_class::<scope::Scope>()?;
    m.add_function(wrap_pyfunction!(context::background, m)?)?;
    m.add_function(wrap_pyfunction!(context::todo, m)?)?;
    m.add_function(wrap_pyfunction!(context::with_cancel, m)?)?;
    m.add_function(wrap_pyfunction!(context::with_cancel_cause, m)?)?;
    m.add_function(wrap_pyfunction!(context::with_timeout, m)?)?;
    m.add_function(wrap_pyfunction!(context::with_deadline, m)?)?;
    m.add_function(wrap_pyfunction!(context::with_value, m)?)?;
    m.add_function(wrap_pyfunction!(context::without_cancel, m)?)?;
    m.add_function(wrap_pyfunction!(context::cause, m)?)?;
    m.add_function(wrap_pyfunction!(after::after_func, m)?)?;
    m.add_function(wrap_pyfunction!(after::loop_after_func, m)?)?;
    m.add_function(wrap_pyfunction!(cancel::_track_origins, m)?)?;
    m.add_class::<patterns::Backoff>()?;
    m.add_function(wrap_pyfunction!(debug::lost_cancels, m)?)?;
    m.add_function(wrap_pyfunction!(debug::set_lost_cancel_hook, m)?)?;
    m.add_function(wrap_pyfunction!(debug::track, m)?)?;
    m.add_function(wrap_pyfunction!(debug::is_tracking, m)?)?;
    m.add_function(wrap_pyfunction!(debug::set_site, m)?)?;
    m.add_function(wrap_pyfunction!(debug::snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(debug::live_timers, m)?)?;
    m.add_function(wrap_pyfunction!(debug::pending_after_funcs, m)?)?;
    m.add_class::<wire::TraceContext>()?;
    m.add_class::<wire::Policy>()?;
    m.add_function(wrap_pyfunction!(wire::parse_grpc_timeout, m)?)?;
    m.add_function(wrap_pyfunction!(wire::format_grpc_timeout, m)?)?;
    m.add_function(wrap_pyfunction!(wire::parse_timeout_ms, m)?)?;
    m.add_function(wrap_pyfunction!(wire::format_timeout_ms, m)?)?;
    m.add_function(wrap_pyfunction!(wire::parse_traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(wire::parse_tracestate, m)?)?;
    m.add_function(wrap_pyfunction!(wire::parse_baggage, m)?)?;
    m.add_function(wrap_pyfunction!(wire::format_baggage, m)?)?;
    m.add_function(wrap_pyfunction!(wire::extract, m)?)?;
    m.add_function(wrap_pyfunction!(wire::inject, m)?)?;
    m.add_function(wrap_pyfunction!(wire::trace_context, m)?)?;
    m.add_function(wrap_pyfunction!(wire::trace_link, m)?)?;
    m.add_function(wrap_pyfunction!(wire::tracestate, m)?)?;
    m.add_function(wrap_pyfunction!(wire::baggage, m)?)?;
    m.add_function(wrap_pyfunction!(wire::with_trace_context, m)?)?;
    m.add_function(wrap_pyfunction!(wire::with_baggage, m)?)?;
    m.add_function(wrap_pyfunction!(wire::end_reasons, m)?)?;
    m.add_function(wrap_pyfunction!(wire::end_reason, m)?)?;
    m.add_function(wrap_pyfunction!(wire::end_reason_message, m)?)?;
    Ok(())
}
