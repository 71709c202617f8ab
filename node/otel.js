'use strict'
// polyctx/otel: polyctx beside OpenTelemetry JS.
//
// OpenTelemetry owns traceparent, tracestate and baggage: once its
// propagation API is registered, polyctx's integrations (fetch, grpc)
// never write them, since two writers of traceparent break traces. What
// OpenTelemetry does not carry is the deadline: `DeadlinePropagator` does,
// as a TextMapPropagator to put in your CompositePropagator (JS cannot add
// itself to the global one). Use it *or* polyctx's fetch/grpc helpers for
// a given client, not both, or the budget is sent twice (harmless: the
// receiver takes the shortest).
//
// Adapters: `toOtel(ctx)` puts a polyctx context (and, if OpenTelemetry has
// no span there, its trace context) into an OpenTelemetry context;
// `fromOtel(otelCtx)` gives it back, or makes one carrying the active span's
// trace context.
//
// @opentelemetry/api is the user's: loaded with this module, never
// installed by polyctx.

const api = require('@opentelemetry/api')
const polyctx = require('./index.js')
const internal = require('./internal.js')
const wire = require('./wire.js')

const { current } = polyctx
const { Policy, TraceContext } = wire
const { invalidArg, typeName, handle } = internal

/** Where a polyctx context lives in an OpenTelemetry context. */
const POLYCTX_KEY = api.createContextKey('polyctx.context')

const TIMEOUT_FIELDS = { http: 'request-timeout-ms', connect: 'connect-timeout-ms', grpc: 'grpc-timeout' }

/**
 * A TextMapPropagator for the deadline: `inject` writes the remaining
 * budget of the polyctx context in the OpenTelemetry context (else
 * `current()`); `extract` reads an inbound budget into a polyctx context
 * stored in the returned OpenTelemetry context (read it with `fromOtel`).
 * Options: `policy` for inbound budgets (default `Policy.external()`),
 * `protocol` ('http' default, 'connect', 'grpc').
 */
class DeadlinePropagator {
  #policy
  #protocol

  constructor(options = {}) {
    const policy = options.policy ?? Policy.external()
    if (!(policy instanceof Policy)) throw invalidArg(`polyctx/otel: policy must be a wire.Policy, got ${typeName(policy)}`)
    const protocol = options.protocol ?? 'http'
    if (!(protocol in TIMEOUT_FIELDS)) throw invalidArg(`polyctx/otel: protocol must be 'http', 'connect' or 'grpc', got ${typeName(protocol)}`)
    this.#policy = policy.withoutTrace()
    this.#protocol = protocol
  }

  inject(context, carrier, setter) {
    const ctx = context.getValue(POLYCTX_KEY) ?? current()
    let fields
    try {
      fields = wire.inject(ctx, [], this.#policy, { protocol: this.#protocol })
    } catch {
      return // no time left: nothing to send (polyctx's helpers refuse the call itself)
    }
    for (const [name, value] of fields) setter.set(carrier, name, value)
  }

  extract(context, carrier, getter) {
    const value = getter.get(carrier, TIMEOUT_FIELDS[this.#protocol])
    if (value === undefined) return context
    const parent = context.getValue(POLYCTX_KEY) ?? current()
    try {
      const [ctx] = wire.extract(parent, [[TIMEOUT_FIELDS[this.#protocol], value]], this.#policy, { protocol: this.#protocol })
      return context.setValue(POLYCTX_KEY, ctx)
    } catch {
      return context // a malformed budget is the server's to reject, not the propagator's
    }
  }

  fields() {
    return [TIMEOUT_FIELDS[this.#protocol]]
  }
}

/**
 * An OpenTelemetry context (from `otelContext`, default the active one)
 * holding `ctx`; if it has no span, `ctx`'s trace context becomes its
 * (remote) span context, so OpenTelemetry continues polyctx's trace.
 */
function toOtel(ctx, otelContext = api.context.active()) {
  handle(ctx, 'otel.toOtel')
  let out = otelContext.setValue(POLYCTX_KEY, ctx)
  const tc = wire.traceContext(ctx)
  if (tc !== null && api.trace.getSpan(otelContext) === undefined) {
    out = api.trace.setSpanContext(out, { traceId: tc.traceId, spanId: tc.spanId, traceFlags: tc.flags & 1, isRemote: true })
  }
  return out
}

/**
 * The polyctx context in `otelContext` (default the active one), else
 * `parent` (default `current()`); if `otelContext` has a valid span that
 * context does not carry, a child of it carrying the span's trace context.
 */
function fromOtel(otelContext = api.context.active(), parent = current()) {
  const ctx = otelContext.getValue(POLYCTX_KEY) ?? parent
  handle(ctx, 'otel.fromOtel')
  const sc = api.trace.getSpanContext(otelContext)
  if (sc === undefined || !api.isSpanContextValid(sc)) return ctx
  const tc = wire.traceContext(ctx)
  if (tc !== null && tc.traceId === sc.traceId && tc.spanId === sc.spanId) return ctx
  return wire.withTraceContext(ctx, new TraceContext(sc.traceId, sc.spanId, sc.traceFlags & 0xff))
}

module.exports = { DeadlinePropagator, toOtel, fromOtel, POLYCTX_KEY }
