'use strict'
// polyctx/http: a context per incoming request, for node:http (and its
// HTTP/2 compatibility API), Express and Fastify.
//
// The context comes from the request's headers under a trust policy
// (polyctx.wire.extract: the caller's budget, shrunk by the time already
// spent, and its trace), and ends with the response:
// - the client went away before the response was complete: canceled with
//   EndReason.clientDisconnected. The rule that holds on Node 20-24 is the
//   response's 'close' with `writableEnded === false`; never the request's
//   'close', which fires as soon as the body has been read.
// - the response is complete: canceled with EndReason.requestFinished, so
//   work still running for it stops.
// It is bound to the request (`contextOf(req)`, `req.ctx` with the
// middleware) and is `current()` in everything the handler starts.
//
// One 'close' listener per response, removed with the response; no timer
// besides the core's deadline, which the cancel disarms.

const { AsyncResource } = require('node:async_hooks')
const polyctx = require('./index.js')
const internal = require('./internal.js')
const wire = require('./wire.js')

const { background, EndReason } = polyctx
const { MalformedHeader, Policy } = wire
const { invalidArg, typeName, currentStore } = internal

const contexts = new WeakMap() // req -> ctx

/** Counters for the requests this process has served (see `stats()`). */
const counters = { inFlight: 0, started: 0, finished: 0, disconnected: 0, rejected: 0 }

function options(opts, fn) {
  if (opts === undefined) opts = {}
  if (opts === null || typeof opts !== 'object') throw invalidArg(`polyctx/http.${fn}: options must be an object, got ${typeName(opts)}`)
  const policy = opts.policy ?? Policy.external()
  if (!(policy instanceof Policy)) throw invalidArg(`polyctx/http.${fn}: policy must be a wire.Policy, got ${typeName(policy)}`)
  const parent = opts.parent ?? background()
  internal.handle(parent, `http.${fn}`)
  return { policy, parent, protocol: opts.protocol ?? 'http', property: opts.property === undefined ? 'ctx' : opts.property }
}

// The request's context, made on first use (see the module's comment).
function attach(req, res, opts) {
  let ctx = contexts.get(req)
  if (ctx !== undefined) return ctx
  if (res === undefined || res === null || typeof res.once !== 'function') {
    throw invalidArg(`polyctx/http: the response is needed to know when the request ends, got ${typeName(res)}`)
  }
  let cancel
  try {
    ;[ctx, cancel] = wire.extract(opts.parent, req.headersDistinct ?? req.headers, opts.policy, { protocol: opts.protocol })
  } catch (e) {
    if (e instanceof MalformedHeader) counters.rejected++
    throw e
  }
  contexts.set(req, ctx)
  counters.inFlight++
  counters.started++
  const end = () => {
    counters.inFlight--
    if (res.writableEnded) {
      counters.finished++
      cancel(EndReason.requestFinished)
    } else {
      counters.disconnected++
      cancel(EndReason.clientDisconnected)
    }
  }
  if (res.destroyed || req.socket?.destroyed === true || req.stream?.destroyed === true) {
    end() // gone before we looked
  } else {
    res.once('close', end)
  }
  return ctx
}

/**
 * The context of an incoming request (`req`, `res` from node:http,
 * node:http2's compatibility API, Express or Fastify's `request.raw` and
 * `reply.raw`): made on first call from the request's headers, then the
 * same one. Throws `MalformedHeader` (`status` 400) when the protocol's own
 * timeout header is malformed.
 *
 * Options: `policy` (a wire.Policy, default `Policy.external()`),
 * `protocol` ('http' | 'grpc' | 'connect', default 'http'), `parent`
 * (default `background()`; a server-wide context, say, that is canceled on shutdown).
 */
function requestContext(req, res, opts) {
  if (req === null || typeof req !== 'object') throw invalidArg(`polyctx/http.requestContext: req must be a request, got ${typeName(req)}`)
  return attach(req, res, options(opts, 'requestContext'))
}

/** The context `requestContext` or a middleware made for `req`, or `undefined`. */
function contextOf(req) {
  return contexts.get(req)
}

/**
 * Express (and Connect-style) middleware: `req.ctx` (or `options.property`;
 * `false` for none) is the request's context, and it is `current()` for
 * everything after this middleware. A malformed
 * timeout header goes to `next(err)` with `err.status` 400.
 */
function middleware(opts) {
  const o = options(opts, 'middleware')
  return function polyctxMiddleware(req, res, next) {
    let ctx
    try {
      ctx = attach(req, res, o)
    } catch (e) {
      return next(e)
    }
    if (o.property) req[o.property] = ctx
    currentStore.run(ctx, next)
  }
}

/**
 * Wraps a node:http (or node:http2 compatibility) request handler:
 * `handler(req, res, ctx)` runs with the request's context, also as
 * `current()`. A malformed timeout header is answered with 400.
 */
function handler(fn, opts) {
  if (typeof fn !== 'function') throw invalidArg(`polyctx/http.handler: fn must be a function, got ${typeName(fn)}`)
  const o = options(opts, 'handler')
  return function polyctxHandler(req, res) {
    let ctx
    try {
      ctx = attach(req, res, o)
    } catch (e) {
      if (!(e instanceof MalformedHeader)) throw e
      res.statusCode = e.httpStatus
      res.setHeader('content-type', 'text/plain; charset=utf-8')
      return res.end(`${e.message}\n`)
    }
    if (o.property) req[o.property] = ctx
    return currentStore.run(ctx, fn, req, res, ctx)
  }
}

const RESOURCE = Symbol('polyctx.resource')

/**
 * A Fastify plugin (`fastify.register(fastifyPlugin, options)`): every
 * request gets `request.ctx` (or `options.property`), also `current()` in
 * hooks and handlers, body parsing included. A malformed timeout header
 * fails the request with status 400. Registered without encapsulation, so
 * it applies to every route.
 */
function fastifyPlugin(fastify, opts, done) {
  const o = options(stripFastifyOptions(opts), 'fastifyPlugin')
  if (o.property) fastify.decorateRequest(o.property, null)
  fastify.addHook('onRequest', (request, reply, next) => {
    let ctx
    try {
      ctx = attach(request.raw, reply.raw, o)
    } catch (e) {
      return next(e)
    }
    if (o.property) request[o.property] = ctx
    currentStore.run(ctx, () => {
      request[RESOURCE] = new AsyncResource('polyctx.request')
      next()
    })
  })
  // Body parsing leaves the request's async context; come back to it.
  fastify.addHook('preValidation', (request, reply, next) => {
    const resource = request[RESOURCE]
    if (resource === undefined) return next()
    resource.runInAsyncScope(next)
  })
  done()
}
fastifyPlugin[Symbol.for('skip-override')] = true
fastifyPlugin[Symbol.for('fastify.display-name')] = 'polyctx'

// Fastify passes its own registration options (prefix, logLevel...) beside ours.
function stripFastifyOptions(opts) {
  if (opts === undefined || opts === null) return {}
  const { policy, parent, protocol, property } = opts
  const o = {}
  if (policy !== undefined) o.policy = policy
  if (parent !== undefined) o.parent = parent
  if (protocol !== undefined) o.protocol = protocol
  if (property !== undefined) o.property = property
  return o
}

/**
 * What this process's request contexts are doing: `inFlight` (made and not
 * yet ended), and since start `started`, `finished` (the response
 * completed), `disconnected` (the client went away first) and `rejected`
 * (a malformed timeout header).
 */
function stats() {
  return { ...counters }
}

module.exports = { requestContext, contextOf, middleware, handler, fastifyPlugin, stats }
