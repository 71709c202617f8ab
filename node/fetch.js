'use strict'
// polyctx/fetch: fetch (the global one, or undici's) under a context. The
// request carries the context's remaining budget (and trace context, under
// the policy), is aborted when the context is done, and is never sent when
// no time is left. A rejection keeps the signal's reason: the context's
// `Canceled` (name 'AbortError') or `DeadlineExceeded` (name 'TimeoutError'),
// whose `cause` says why (an EndReason, say).

const internal = require('./internal.js')
const wire = require('./wire.js')

const { Policy } = wire
const { invalidArg, typeName, handle } = internal

let defaultPolicy = null

/**
 * `fetch(input, init)` under `ctx`. Options: `policy` for the destination
 * (default `Policy.external()`: the budget and traceparent only; pass
 * `Policy.internal()` for your own services to send tracestate and baggage
 * too), `protocol` ('http' sends request-timeout-ms, 'connect'
 * connect-timeout-ms), `fetch` (default `globalThis.fetch`; undici's works
 * too). With OpenTelemetry's propagation registered, polyctx leaves the
 * trace headers to it and sends only the budget.
 */
async function fetch(ctx, input, init, options) {
  handle(ctx, 'fetch')
  if (init !== undefined && (init === null || typeof init !== 'object')) {
    throw invalidArg(`polyctx/fetch: init must be an object, got ${typeName(init)}`)
  }
  let policy = options?.policy ?? (defaultPolicy ??= Policy.external())
  if (!(policy instanceof Policy)) throw invalidArg(`polyctx/fetch: policy must be a wire.Policy, got ${typeName(policy)}`)
  if (internal.otelOwnsTrace()) policy = policy.withoutTrace()
  const impl = options?.fetch ?? globalThis.fetch
  if (typeof impl !== 'function') throw invalidArg(`polyctx/fetch: fetch must be a function, got ${typeName(impl)}`)
  // Input may be a Request with headers of its own; init's win, as in fetch.
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
  wire.inject(ctx, headers, policy, { protocol: options?.protocol ?? 'http' }) // throws when no time is left
  const signal = init?.signal ? AbortSignal.any([ctx.signal, init.signal]) : ctx.signal
  return impl(input, { ...init, headers, signal })
}

/** A fetch function bound to `ctx` (and `options`): `(input, init) => fetch(ctx, input, init, options)`. */
function bind(ctx, options) {
  handle(ctx, 'fetch.bind')
  return (input, init) => fetch(ctx, input, init, options)
}

module.exports = { fetch, bind }
