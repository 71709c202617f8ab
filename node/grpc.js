'use strict'
// polyctx/grpc: contexts across @grpc/grpc-js calls.
//
// Client: `callOptions(ctx)` gives a call its deadline and its context;
// `interceptor()` (on the client, or per call) sends the trace context and
// baggage as metadata, cancels the call when the context is done, and
// fails the call locally, sending nothing, when no time is left. grpc-js
// sends `grpc-timeout` itself, from the deadline, so the budget travels
// once.
//
// Server: `serverContext(call)` is the call's context: the deadline the
// client sent (grpc-js reads `grpc-timeout` into `call.getDeadline()`,
// `Infinity` when none) under a trust policy, the trace context and baggage
// from the metadata, canceled with EndReason.peerCanceled when the client
// cancels. `unary(handler)` also ends it with requestFinished once the
// response is sent.
//
// @grpc/grpc-js is the user's: loaded when first needed, never installed
// by polyctx.

const polyctx = require('./index.js')
const internal = require('./internal.js')
const wire = require('./wire.js')

const { current, EndReason, DeadlineExceeded } = polyctx
const { Policy, MalformedHeader } = wire
const { invalidArg, typeName, handle, currentStore } = internal

let grpc = null
function grpcJs() {
  return (grpc ??= require('@grpc/grpc-js'))
}

const CTX = Symbol.for('polyctx.grpc.context')

/**
 * Call options for `ctx`: its deadline (if any) and the context itself,
 * for `interceptor()`. `extra` is merged in (an earlier `deadline` there wins).
 */
function callOptions(ctx, extra = {}) {
  handle(ctx, 'grpc.callOptions')
  const options = { ...extra, [CTX]: ctx }
  const d = ctx.deadline()
  if (d !== null && !(extra.deadline !== undefined && +extra.deadline <= +d)) options.deadline = d
  return options
}

function policyOption(opts, fallback, fn) {
  const policy = opts?.policy ?? fallback()
  if (!(policy instanceof Policy)) throw invalidArg(`polyctx/grpc.${fn}: policy must be a wire.Policy, got ${typeName(policy)}`)
  return policy
}

// The status a call fails with when its context is done: the core's mapping.
function statusOf(ctx, err) {
  const reason = EndReason.of(ctx) ?? (err instanceof DeadlineExceeded ? EndReason.deadlineExceeded : EndReason.canceled)
  return { code: reason.grpcCode, details: `polyctx: ${err?.message ?? reason.message}` }
}

/**
 * A client interceptor: the call's context is the one `callOptions(ctx)`
 * gave it, else `current()`. Options: `policy` for the destination
 * (default `Policy.external()`: only the budget and traceparent are sent;
 * `Policy.internal()` for your own services also sends tracestate and
 * baggage). With OpenTelemetry's propagation registered, polyctx leaves
 * the trace headers to it.
 */
function interceptor(opts) {
  const policy = policyOption(opts, () => Policy.external(), 'interceptor')
  const { InterceptingCall, Metadata } = grpcJs()
  return function polyctxInterceptor(options, nextCall) {
    const ctx = options[CTX] ?? current()
    const d = ctx.deadline()
    const callOpts = d !== null && !(options.deadline !== undefined && +options.deadline <= +d) ? { ...options, deadline: d } : options
    let call = null
    let onAbort = null
    const stopWatching = () => {
      if (onAbort !== null) ctx.signal.removeEventListener('abort', onAbort)
      onAbort = null
    }
    let failed = false
    const requester = {
      start(metadata, listener, next) {
        try {
          wire.inject(ctx, metadata, effective(policy), { protocol: 'grpc' })
        } catch (err) {
          if (!ctx.isDone() && !(err instanceof DeadlineExceeded)) throw err
          // Fail locally: the call never starts, and nothing is sent.
          failed = true
          const status = statusOf(ctx, err)
          process.nextTick(() => listener.onReceiveStatus({ ...status, metadata: new Metadata() }))
          return
        }
        metadata.remove('grpc-timeout') // grpc-js sends the deadline itself
        onAbort = () => {
          onAbort = null
          const status = statusOf(ctx, ctx.err())
          call.cancelWithStatus(status.code, status.details)
        }
        ctx.signal.addEventListener('abort', onAbort, { once: true })
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            stopWatching()
            nextStatus(status)
          },
        })
      },
      sendMessage(message, next) {
        if (!failed) next(message)
      },
      halfClose(next) {
        if (!failed) next()
      },
      cancel(next) {
        stopWatching()
        if (!failed) next()
      },
    }
    call = new InterceptingCall(nextCall(callOpts), requester)
    return call
  }
}

// With OpenTelemetry's propagation registered, it owns traceparent and
// baggage; polyctx sends only the budget.
function effective(policy) {
  return internal.otelOwnsTrace() ? policy.withoutTrace() : policy
}

/**
 * The context of a server call (unary or streaming): its deadline, trace
 * context and baggage under `policy` (default `Policy.external()`),
 * derived from `parent` (default `background()`), canceled with
 * EndReason.peerCanceled when the client cancels. Returns `[ctx, cancel]`;
 * cancel it (say with EndReason.requestFinished) when the call is over.
 * Throws `MalformedHeader` (grpcCode INTERNAL) for a malformed timeout.
 */
function serverContext(call, opts) {
  if (call === null || typeof call !== 'object' || typeof call.getDeadline !== 'function') {
    throw invalidArg(`polyctx/grpc.serverContext: call must be a grpc-js server call, got ${typeName(call)}`)
  }
  const policy = policyOption(opts, () => Policy.external(), 'serverContext')
  const parent = opts?.parent ?? polyctx.background()
  const flat = internal.fieldsOf(call.metadata, 'serverContext')
  const fields = []
  for (let i = 0; i < flat.length; i += 2) fields.push([flat[i], flat[i + 1]])
  // grpc-js has taken grpc-timeout out of the metadata, into the deadline.
  const deadline = call.getDeadline()
  const ms = deadline instanceof Date ? deadline.getTime() : deadline
  if (Number.isFinite(ms)) {
    const sent = wire.formatGrpcTimeout(BigInt(Math.round((ms - Date.now()) * 1e6)))
    fields.push(['grpc-timeout', sent ?? '0n'])
  }
  const [ctx, cancel] = wire.extract(parent, fields, policy, { protocol: 'grpc' })
  if (call.cancelled) {
    cancel(EndReason.peerCanceled)
  } else {
    const onCancelled = () => cancel(EndReason.peerCanceled)
    call.once('cancelled', onCancelled)
    afterEnd(ctx, () => call.removeListener('cancelled', onCancelled))
  }
  return [ctx, cancel]
}

function afterEnd(ctx, fn) {
  polyctx.afterFunc(ctx, fn)
}

/**
 * Wraps a unary handler: `handler(call, callback, ctx)` runs with the
 * call's context, also as `current()`; the context ends with
 * requestFinished once the response is sent, or peerCanceled. A malformed
 * timeout fails the call with INTERNAL.
 */
function unary(handler, opts) {
  if (typeof handler !== 'function') throw invalidArg(`polyctx/grpc.unary: handler must be a function, got ${typeName(handler)}`)
  return function polyctxUnary(call, callback) {
    let ctx, cancel
    try {
      ;[ctx, cancel] = serverContext(call, opts)
    } catch (e) {
      if (!(e instanceof MalformedHeader)) throw e
      return callback({ code: e.grpcCode, details: e.message })
    }
    const done = (...args) => {
      try {
        callback(...args)
      } finally {
        cancel(EndReason.requestFinished)
      }
    }
    return currentStore.run(ctx, handler, call, done, ctx)
  }
}

module.exports = { callOptions, interceptor, serverContext, unary }
