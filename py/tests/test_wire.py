"""polyctx.wire: the shared header vectors (tests/wire/vectors.json) through
Python's face of the codecs, then what only the binding has: its types,
inputs (str, bytes, mappings, pairs), errors and end reasons. The rules
themselves are the core's and tested there."""

from __future__ import annotations

import json
import pickle
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import polyctx
from polyctx import wire
from polyctx.wire import BaggageEntry, EndReason, MalformedHeader, Policy, TraceContext

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "tests" / "wire" / "vectors.json").read_text())["vectors"]
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
MS = 1_000_000


def inputs(v: dict[str, Any]) -> list[str]:
    if "input_repeat" in v:
        prefix, unit, times, suffix = v["input_repeat"]
        return [prefix + unit * times + suffix]
    return [v["input"]] if isinstance(v["input"], str) else v["input"]


def timeout(parse: Any, value: str, **kw: Any) -> str | None:
    try:
        ns = parse(value, **kw)
    except MalformedHeader:
        return "malformed"
    return None if ns is None else str(ns)


def run(v: dict[str, Any]) -> Any:
    kind = v["kind"]
    if kind == "grpc-timeout":
        return timeout(wire.parse_grpc_timeout, inputs(v)[0])
    if kind == "timeout-ms":
        return timeout(wire.parse_timeout_ms, inputs(v)[0], header=v["header"])
    if kind == "format-grpc-timeout":
        return wire.format_grpc_timeout(int(v["input"]))
    if kind == "format-timeout-ms":
        return wire.format_timeout_ms(int(v["input"]))
    if kind == "traceparent":
        tc = wire.parse_traceparent(inputs(v))
        return None if tc is None else {"trace_id": tc.trace_id, "span_id": tc.span_id, "flags": tc.flags}
    if kind == "tracestate":
        ts = wire.parse_tracestate(inputs(v))
        return None if ts is None else [list(m) for m in ts]
    if kind == "baggage":
        b = wire.parse_baggage(inputs(v))
        return [[k, e.value, [list(p) for p in e.properties]] for k, e in b.items()]
    if kind == "format-baggage":
        entries = {k: BaggageEntry(value, tuple((p, pv) for p, pv in props)) for k, value, props in v["input"]}
        try:
            return wire.format_baggage(entries) or None
        except MalformedHeader:
            return "malformed"
    raise AssertionError(f"unknown vector kind {kind}")


def test_there_are_enough_vectors():
    assert len(VECTORS) >= 60


@pytest.mark.parametrize("v", VECTORS, ids=[f"{v['kind']}: {v['name']}" for v in VECTORS])
def test_vector(v: dict[str, Any]):
    assert run(v) == v["expect"]


def test_bytes_values_are_latin1():
    assert wire.parse_grpc_timeout(b"250m") == 250 * MS
    assert wire.parse_traceparent([TP.encode()]) == wire.parse_traceparent(TP)
    assert wire.parse_baggage(b"k=%E2%9C%93")["k"].value == "\u2713"
    # A raw non-ASCII byte is no baggage octet: the member is dropped.
    assert wire.parse_baggage("k=\xe9".encode("latin-1")) == {}
    with pytest.raises(MalformedHeader):
        wire.parse_grpc_timeout("1\xe9".encode("latin-1"))
    assert wire.parse_traceparent(None) is None and wire.parse_baggage(None) == {}


def test_bad_inputs_raise_type_and_value_errors():
    with pytest.raises(TypeError, match="str or bytes"):
        wire.parse_grpc_timeout(5)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="nanoseconds"):
        wire.format_grpc_timeout(1.5)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="connect-timeout-ms"):
        wire.parse_timeout_ms("1", header="x-timeout")
    with pytest.raises(TypeError, match="sequence"):
        wire.parse_traceparent(5)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="policy"):
        wire.extract(polyctx.background(), {}, "internal")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="mapping or an iterable"):
        wire.extract(polyctx.background(), ["ab"], Policy.internal())  # type: ignore[list-item]  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="protocol"):
        wire.extract(polyctx.background(), {}, Policy.internal(), protocol="smtp")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="negative"):
        Policy.internal(max_timeout=-1)
    with pytest.raises(ValueError, match="NaN"):
        Policy.external(default_timeout=float("nan"))
    with pytest.raises(MalformedHeader) as e:
        wire.format_baggage({"bad key": "v"})
    assert isinstance(e.value, ValueError) and e.value.header == "baggage"
    with pytest.raises(ValueError, match="token"):
        wire.with_baggage(polyctx.background(), {"bad key": "v"})


def test_format_saturates_python_ints():
    assert wire.format_grpc_timeout(2**100) == "2147483S"
    assert wire.format_timeout_ms(-(2**100)) is None
    assert wire.format_timeout_ms(0) is None and wire.format_timeout_ms(1) == "1"
    assert wire.parse_grpc_timeout("99999999H") == 2**63 - 1


def test_trace_context_type():
    tc = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", flags=0xFF)
    assert tc.to_header() == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", "flags masked"
    assert tc.flags == 0xFF and tc.sampled
    assert tc == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0xFF)
    assert len({tc, pickle.loads(pickle.dumps(tc))}) == 1
    assert str(tc) == tc.to_header() and "4bf92f35" in repr(tc)
    for bad in (("0" * 32, "00f067aa0ba902b7"), ("4BF92F3577B34DA6A3CE929D0E0E4736", "00f067aa0ba902b7"), ("ab", "cd")):
        with pytest.raises(ValueError, match="lowercase hex"):
            TraceContext(*bad)
    with pytest.raises(ValueError, match="0-255"):
        TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 256)
    root = TraceContext.new_root()
    child = root.child()
    assert child.trace_id == root.trace_id and child.span_id != root.span_id


def test_policies():
    ext = Policy.external()
    assert (ext.trust, ext.max_timeout, ext.default_timeout, ext.baggage_allow) == ("external", 300, 30, ())
    internal = Policy.internal(max_timeout=timedelta(seconds=2))
    assert (internal.trust, internal.max_timeout, internal.default_timeout) == ("internal", 2.0, None)
    assert Policy.external(baggage_allow=["tenant"]).baggage_allow == ("tenant",)
    assert Policy.external() == ext and Policy.internal() != ext
    quiet = ext.with_propagate_trace(False)
    assert not quiet.propagate_trace and "propagate_trace=False" in repr(quiet)
    assert repr(Policy.external(baggage_allow=["a"])) == (
        "Policy.external(max_timeout=300, default_timeout=30, baggage_allow=('a',))"
    )


def budget_ms(ctx: polyctx.Context) -> float:
    deadline = ctx.deadline()
    assert deadline is not None
    return (deadline - time.monotonic()) * 1000


def test_extract_takes_mappings_pairs_str_and_bytes():
    for headers in (
        {"Request-Timeout-Ms": "1500", "traceparent": TP},
        [(b"request-timeout-ms", b"1500"), (b"TRACEPARENT", TP.encode())],
        (("request-timeout-ms", "1500"), ("traceparent", TP)),
    ):
        ctx, cancel = wire.extract(polyctx.background(), headers, Policy.internal())
        assert 1000 < budget_ms(ctx) <= 1500
        trace = wire.trace_context(ctx)
        assert trace is not None and trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert trace.span_id != "00f067aa0ba902b7", "this hop's span is a new one"
        cancel()


def test_extract_counts_the_budget_from_arrival():
    arrived = time.monotonic_ns() - 300 * MS
    ctx, cancel = wire.extract(polyctx.background(), {"grpc-timeout": "1S"}, Policy.internal(), arrived_ns=arrived)
    assert 500 < budget_ms(ctx) <= 700
    cancel()


def test_budgets_shrink_across_three_hops():
    # Hop 1 got 1 s, 100 ms ago; it calls hop 2 over gRPC, which calls hop 3
    # over Connect after spending 100 ms more.
    ctx1, c1 = wire.extract(
        polyctx.background(),
        {"request-timeout-ms": "1000"},
        Policy.internal(),
        arrived_ns=time.monotonic_ns() - 100 * MS,
    )
    sent: dict[str, str] = {}
    wire.inject(ctx1, sent, Policy.internal(), protocol="grpc")
    assert (wire.parse_grpc_timeout(sent["grpc-timeout"]) or 0) <= 900 * MS
    ctx2, c2 = wire.extract(
        polyctx.background(), sent, Policy.internal(), protocol="grpc", arrived_ns=time.monotonic_ns() - 100 * MS
    )
    sent2: list[tuple[str, str]] = []
    wire.inject(ctx2, sent2, Policy.internal(), protocol="connect")
    (name, value) = sent2[0]
    assert name == "connect-timeout-ms" and 500 < int(value) <= 800
    ctx3, c3 = wire.extract(polyctx.background(), sent2, Policy.internal(), protocol="connect")
    assert 500 < budget_ms(ctx3) <= 800
    for c in (c1, c2, c3):
        c()


def test_malformed_protocol_header_raises():
    with pytest.raises(MalformedHeader, match="grpc-timeout") as e:
        wire.extract(polyctx.background(), {"grpc-timeout": "soon"}, Policy.internal(), protocol="grpc")
    assert e.value.header == "grpc-timeout" and e.value.value == "soon"
    # Another protocol's malformed header is only a hint, ignored.
    ctx, cancel = wire.extract(polyctx.background(), {"grpc-timeout": "soon"}, Policy.internal())
    assert ctx.deadline() is None
    cancel()


def test_external_policy_from_python():
    policy = Policy.external(max_timeout=5, baggage_allow=["tenant"])
    headers = {"request-timeout-ms": "60000", "traceparent": TP, "baggage": "tenant=a,user=b", "tracestate": "x=1"}
    ctx, cancel = wire.extract(polyctx.background(), headers, policy)
    assert 4000 < budget_ms(ctx) <= 5000, "clamped"
    assert list(wire.baggage(ctx)) == ["tenant"]
    link = wire.trace_link(ctx)
    assert link is not None and link.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    trace = wire.trace_context(ctx)
    assert trace is not None and trace.trace_id != link.trace_id
    assert wire.tracestate(ctx) == []
    cancel()
    ctx, cancel = wire.extract(polyctx.background(), {}, Policy.external(default_timeout=2))
    assert 1000 < budget_ms(ctx) <= 2000, "a default budget when none is sent"
    cancel()


def test_inject_writes_lists_dicts_and_mappings():
    ctx = wire.with_trace_context(polyctx.background(), TraceContext.new_root())
    ctx = wire.with_baggage(ctx, {"k": "v w", "p": BaggageEntry("x", (("prop", None),))})
    deadline, cancel = polyctx.with_timeout(ctx, 5)
    listed: list[tuple[bytes, bytes]] = [(b"Traceparent", b"stale"), (b"host", b"a")]
    wire.inject(deadline, listed, Policy.internal())
    names = [n for n, _ in listed]
    assert names == [b"host", b"request-timeout-ms", b"traceparent", b"baggage"], "replaced, as bytes"
    assert dict(listed)[b"baggage"] == b"k=v%20w,p=x;prop"
    as_dict = {"TRACEPARENT": "stale"}
    wire.inject(deadline, as_dict, Policy.external())
    assert set(as_dict) == {"request-timeout-ms", "traceparent"}, "nothing else to external destinations"
    with pytest.raises(TypeError, match="mutable mapping"):
        wire.inject(deadline, ("a", "b"), Policy.internal())  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    cancel()


def test_inject_fails_locally_with_the_contexts_error():
    ctx, cancel = polyctx.with_timeout(polyctx.background(), 0, cause=TimeoutError("budget"))
    headers: dict[str, str] = {}
    with pytest.raises(polyctx.DeadlineExceeded) as e:
        wire.inject(ctx, headers, Policy.internal())
    assert isinstance(e.value.__cause__, TimeoutError) and headers == {}
    cancel()
    ctx, cancel = wire.extract(polyctx.background(), {"grpc-timeout": "0n"}, Policy.internal(), protocol="grpc")
    assert isinstance(ctx.err(), polyctx.DeadlineExceeded), "0 is a budget already spent"
    cancel()


def test_otel_switch_turns_trace_off():
    quiet = Policy.internal(propagate_trace=False)
    ctx, cancel = wire.extract(polyctx.background(), {"traceparent": TP, "request-timeout-ms": "500"}, quiet)
    assert wire.trace_context(ctx) is None and wire.baggage(ctx) == {}
    traced = wire.with_trace_context(ctx, TraceContext.new_root())
    out: dict[str, str] = {}
    wire.inject(traced, out, quiet)
    assert list(out) == ["request-timeout-ms"]
    cancel()


def test_end_reasons_map_through_the_core_table():
    assert [(r.grpc_code, r.connect_code, r.http_status) for r in EndReason] == [
        (1, "canceled", 499),
        (4, "deadline_exceeded", 504),
        (1, "canceled", 499),
        (1, "canceled", 499),
        (14, "unavailable", 503),
        (1, "canceled", 499),
    ]
    for reason in EndReason:
        ctx, cancel = polyctx.with_cancel_cause(polyctx.background())
        assert EndReason.of(ctx) is None
        cause = reason.cause()
        cancel(cause)
        assert EndReason.of(ctx) is reason and wire.end_reason(ctx) is reason
        got = polyctx.cause(ctx)
        assert type(got) is type(cause)
        assert str(got) == str(cause)
    assert str(wire.ClientDisconnected()) == "client disconnected"
    assert str(wire.ServerShutdown("draining")) == "draining"
    ctx, cancel = polyctx.with_cancel_cause(polyctx.background())
    cancel(ValueError("mine"))
    assert EndReason.of(ctx) is EndReason.CANCELED


def test_end_reason_is_what_c_sees():
    """A reason set from Python is the core's reason, not a message: C reads
    it back as an end reason, and Python reads C's as the same class."""
    ctx, cancel = wire.extract(polyctx.background(), {}, Policy.internal())
    cancel(wire.PeerCanceled())
    err = ctx.err()
    assert isinstance(err, polyctx.Canceled) and isinstance(err.__cause__, wire.PeerCanceled)
    ptr = ctx.to_c()
    again = polyctx.Context.from_c(ptr)
    polyctx.c_library().ctx_release(ptr)
    assert EndReason.of(again) is EndReason.PEER_CANCELED
