'use strict'
// polyctx.wire: what crosses between services. Deadlines travel as
// relative timeouts (grpc-timeout, connect-timeout-ms, request-timeout-ms)
// that shrink by the time each hop spends; W3C trace context and baggage
// travel beside them; a trust policy per listener and per client says how
// much of it to believe and to send.
//
// Every codec and rule is the core's (core/src/wire, through
// node/src/wire.rs); this file converts JS values (header containers,
// bigints, Maps) to and from the core's, and throws JS errors.
//
// Inbound metadata is never an identity or authorization input: a header
// says what its sender claims, nothing more. There is no "principal from
// header" helper, and the external policy (the default for a listener)
// bounds what an untrusted caller can make a service do.

require('./index.js') // fills `internal`
const internal = require('./internal.js')

const { native, handle, linkOf, wrap, cancelCauseFunc, makeError, invalidArg, outOfRange, typeName } =
  internal
const { EndReason } = require('./index.js')

const HEADER_NAMES = new Set(native.headerNames())

// ---------------------------------------------------------------------------
// Errors

/**
 * A header value that is present but does not follow its grammar. For the
 * protocol's own timeout header it fails the request: gRPC INTERNAL,
 * Connect invalid_argument, HTTP 400 (`httpStatus`, also as `status` and
 * `statusCode` for Express, Fastify and http-errors).
 */
class MalformedHeader extends TypeError {
  constructor(message, { header, value, grpcCode = 13, connectCode = 'invalid_argument', httpStatus = 400 } = {}) {
    super(message)
    this.code = 'ERR_POLYCTX_MALFORMED_HEADER'
    /** The header's name, lowercase. */
    this.header = header
    /** The offending value (possibly truncated). */
    this.value = value
    this.grpcCode = grpcCode
    this.connectCode = connectCode
    this.httpStatus = httpStatus
    this.status = httpStatus
    this.statusCode = httpStatus
    this.expose = true
  }
}
Object.defineProperty(MalformedHeader.prototype, 'name', { value: 'MalformedHeader', writable: true, configurable: true })

function malformed(m) {
  return new MalformedHeader(m.message, m)
}

// ---------------------------------------------------------------------------
// Codecs

function text(value, fn) {
  if (typeof value !== 'string') throw invalidArg(`polyctx.wire.${fn}: value must be a string, got ${typeName(value)}`)
  return value
}

/** Field values: a string, an array of strings (several field lines, in order), or null/undefined for none. */
function values(v, fn) {
  if (v === undefined || v === null) return []
  if (typeof v === 'string') return [v]
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v
  throw invalidArg(`polyctx.wire.${fn}: values must be a string or an array of strings, got ${typeName(v)}`)
}

function nanos(ns, fn) {
  if (typeof ns === 'bigint') return ns
  if (Number.isSafeInteger(ns)) return BigInt(ns)
  throw invalidArg(`polyctx.wire.${fn}: remainingNs must be a bigint (or a safe integer), got ${typeName(ns)}`)
}

function timeout(result) {
  if (result !== null && typeof result === 'object') throw malformed(result)
  return result
}

/** A `grpc-timeout` value in nanoseconds; `null` when empty; throws `MalformedHeader`. Saturates at 2^63-1. */
function parseGrpcTimeout(value) {
  return timeout(native.parseGrpcTimeout(text(value, 'parseGrpcTimeout')))
}

/** `remainingNs` as a `grpc-timeout` value, rounded up and capped; `null` when nothing is left. */
function formatGrpcTimeout(remainingNs) {
  return native.formatGrpcTimeout(nanos(remainingNs, 'formatGrpcTimeout'))
}

/**
 * A `connect-timeout-ms` / `request-timeout-ms` value in nanoseconds;
 * `null` when empty; throws `MalformedHeader` (naming `header`).
 */
function parseTimeoutMs(value, header = 'request-timeout-ms') {
  return timeout(native.parseTimeoutMs(String(header), text(value, 'parseTimeoutMs')))
}

/** `remainingNs` in whole milliseconds, rounded up (under 1 ms is `'1'`); `null` when nothing is left. */
function formatTimeoutMs(remainingNs) {
  return native.formatTimeoutMs(nanos(remainingNs, 'formatTimeoutMs'))
}

// ---------------------------------------------------------------------------
// Trace context

const PARTS = Symbol('parts')

/** One hop of a W3C trace: the trace, the parent span of the next hop's work, and the flags. */
class TraceContext {
  /**
   * Throws RangeError unless the ids are lowercase hex (32 and 16 digits),
   * neither all zero, and `flags` is a byte.
   */
  constructor(traceId, spanId, flags = 1) {
    const parts =
      flags instanceof Object && flags[PARTS]
        ? flags[PARTS]
        : typeof traceId === 'string' && typeof spanId === 'string' && Number.isInteger(flags) && flags >= 0
          ? native.traceContext(traceId, spanId, flags)
          : null
    if (parts === null) {
      throw outOfRange(
        `polyctx.wire.TraceContext: not a valid trace context: ${String(traceId)} ${String(spanId)} ${String(flags)}`,
      )
    }
    /** 32 lowercase hex digits. */
    this.traceId = parts.traceId
    /** 16 lowercase hex digits. */
    this.spanId = parts.spanId
    /** The trace flags (a byte); only sampled (1) and random (2) are sent. */
    this.flags = parts.flags
    Object.defineProperty(this, PARTS, { value: parts })
    Object.freeze(this)
  }

  /** Whether the sampled flag is set. */
  get sampled() {
    return (this.flags & 1) !== 0
  }

  /** The `traceparent` value: version 00, lowercase, flags masked to 0x03. */
  toHeader() {
    return this[PARTS].header
  }

  toString() {
    return this.toHeader()
  }

  /** A new trace: random ids, sampled. */
  static random() {
    return fromParts(native.newTrace())
  }
}

function fromParts(parts) {
  return parts === null ? null : new TraceContext(null, null, { [PARTS]: parts })
}

/** The trace context in `traceparent` field values; `null` when absent, invalid, or when several values differ. */
function parseTraceparent(v) {
  return fromParts(native.parseTraceparent(values(v, 'parseTraceparent')))
}

/** `tracestate` as `[key, value]` pairs; `null` when it must be dropped whole. */
function parseTracestate(v) {
  return native.parseTracestate(values(v, 'parseTracestate'))
}

// ---------------------------------------------------------------------------
// Baggage

/** One baggage member's value and its properties (`[name, value or null]`). */
class BaggageEntry {
  constructor(value, properties = []) {
    if (typeof value !== 'string') throw invalidArg(`polyctx.wire.BaggageEntry: value must be a string, got ${typeName(value)}`)
    const props = [...properties].map((p) => {
      if (!Array.isArray(p) || typeof p[0] !== 'string' || !(p[1] === null || p[1] === undefined || typeof p[1] === 'string')) {
        throw invalidArg(`polyctx.wire.BaggageEntry: a property must be [name, value or null], got ${typeName(p)}`)
      }
      return Object.freeze([p[0], p[1] ?? null])
    })
    this.value = value
    this.properties = Object.freeze(props)
    Object.freeze(this)
  }
}

function toMap(members) {
  return new Map(members.map((m) => [m.key, new BaggageEntry(m.value, m.properties)]))
}

function toMembers(entries, fn) {
  let pairs
  if (entries instanceof Map) pairs = [...entries]
  else if (entries !== null && typeof entries === 'object' && typeof entries[Symbol.iterator] === 'function') pairs = [...entries]
  else if (entries !== null && typeof entries === 'object') pairs = Object.entries(entries)
  else throw invalidArg(`polyctx.wire.${fn}: entries must be a Map, an object or [key, value] pairs, got ${typeName(entries)}`)
  return pairs.map((pair) => {
    const [key, e] = pair
    if (typeof key !== 'string') throw invalidArg(`polyctx.wire.${fn}: a key must be a string, got ${typeName(key)}`)
    const entry = typeof e === 'string' ? new BaggageEntry(e) : e
    if (!(entry instanceof BaggageEntry)) {
      throw invalidArg(`polyctx.wire.${fn}: a value must be a string or a BaggageEntry, got ${typeName(e)}`)
    }
    return { key, value: entry.value, properties: entry.properties.map((p) => [p[0], p[1]]) }
  })
}

/** Baggage field values as a Map of key to BaggageEntry, in order; what is invalid is dropped as the spec says. */
function parseBaggage(v) {
  return toMap(native.parseBaggage(values(v, 'parseBaggage')))
}

/**
 * The `baggage` value for `entries` (a Map, an object or [key, value]
 * pairs; values strings or BaggageEntry), percent-encoded, within the
 * limits; `null` when empty. Throws `MalformedHeader` for a key that is not
 * an HTTP token.
 */
function formatBaggage(entries) {
  const result = native.formatBaggage(toMembers(entries, 'formatBaggage'))
  if (result !== null && typeof result === 'object') throw malformed(result)
  return result
}

// ---------------------------------------------------------------------------
// Trust policies

const NATIVE = Symbol('native')
const TRUSTS = { internal: true, external: false }

/**
 * How much a listener trusts its callers, or a client its destination.
 * Durations are milliseconds (`null`: none).
 */
class Policy {
  constructor(trust, options = {}) {
    if (!(trust in TRUSTS)) throw invalidArg(`polyctx.wire.Policy: trust must be 'internal' or 'external', got ${typeName(trust)}`)
    if (options === null || typeof options !== 'object') {
      throw invalidArg(`polyctx.wire.Policy: options must be an object, got ${typeName(options)}`)
    }
    const external = trust === 'external'
    const ms = (name, fallback) => {
      const v = name in options ? options[name] : fallback
      if (v === null || v === undefined) return null
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) {
        throw outOfRange(`polyctx.wire.Policy: ${name} must be a finite number of milliseconds >= 0, or null, got ${String(v)}`)
      }
      return v
    }
    /** `'internal'` or `'external'`. */
    this.trust = trust
    /** Inbound budgets longer than this many ms are cut to it. */
    this.maxTimeout = ms('maxTimeout', external ? 300_000 : null)
    /** The budget (ms) of a request that sent none. */
    this.defaultTimeout = ms('defaultTimeout', external ? 30_000 : null)
    /** Inbound baggage keys kept from external callers. */
    this.baggageAllow = Object.freeze([...(options.baggageAllow ?? [])].map(String))
    /** Whether traceparent, tracestate and baggage are read and written (off where OpenTelemetry owns them). */
    this.propagateTrace = options.propagateTrace ?? true
    let inner
    try {
      inner = new native.WirePolicy(!external, this.maxTimeout, this.defaultTimeout, [...this.baggageAllow], Boolean(this.propagateTrace))
    } catch (e) {
      throw outOfRange(`polyctx.wire.Policy: ${e.message}`)
    }
    Object.defineProperty(this, NATIVE, { value: inner })
    Object.freeze(this)
  }

  /** For peers inside the same system: budgets, traces and baggage flow as sent; no clamp, no default. */
  static internal(options = {}) {
    return new Policy('internal', options)
  }

  /**
   * For anyone (the safe default for a listener): inbound budgets clamped
   * to `maxTimeout` (300,000 ms), `defaultTimeout` (30,000 ms) when none is
   * sent, inbound baggage dropped but for `baggageAllow`, the trace
   * restarted (the caller's kept as a link); nothing but the budget and
   * traceparent is sent out.
   */
  static external(options = {}) {
    return new Policy('external', options)
  }

  /** This policy with trace and baggage propagation off (OpenTelemetry owns those headers). */
  withoutTrace() {
    if (!this.propagateTrace) return this
    let quiet = withoutTrace.get(this)
    if (quiet === undefined) withoutTrace.set(this, (quiet = new Policy(this.trust, { ...this, propagateTrace: false })))
    return quiet
  }
}
const withoutTrace = new WeakMap()

function policyOf(policy, fallback, fn) {
  if (policy === undefined) return fallback()
  if (!(policy instanceof Policy)) throw invalidArg(`polyctx.wire.${fn}: policy must be a Policy, got ${typeName(policy)}`)
  return policy
}

let defaultExternal = null
let defaultInternal = null
const external = () => (defaultExternal ??= Policy.external())
const internalPolicy = () => (defaultInternal ??= Policy.internal())

const PROTOCOLS = new Set(['http', 'grpc', 'connect'])
function protocolOf(options, fn) {
  const p = options?.protocol ?? 'http'
  if (!PROTOCOLS.has(p)) throw invalidArg(`polyctx.wire.${fn}: protocol must be 'http', 'grpc' or 'connect', got ${typeName(p)}`)
  return p
}

// ---------------------------------------------------------------------------
// Header containers

// Inbound fields the core reads, as flat [name, value, ...] strings: from
// Headers, node's IncomingHttpHeaders (or headersDistinct), a Map, an
// object, [name, value] pairs, or anything with getMap() (gRPC Metadata).
function fieldsOf(headers, fn) {
  const out = []
  const add = (name, value) => {
    const lower = String(name).toLowerCase()
    if (!HEADER_NAMES.has(lower)) return
    if (Array.isArray(value)) for (const v of value) out.push(lower, String(v))
    else if (value !== undefined && value !== null) out.push(lower, Buffer.isBuffer(value) ? value.toString('latin1') : String(value))
  }
  if (headers === undefined || headers === null) return out
  if (typeof Headers !== 'undefined' && headers instanceof Headers) {
    for (const name of HEADER_NAMES) {
      const v = headers.get(name)
      if (v !== null) out.push(name, v)
    }
  } else if (headers instanceof Map || Array.isArray(headers)) {
    for (const pair of headers) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw invalidArg(`polyctx.wire.${fn}: headers given as pairs must be [name, value] pairs, got ${typeName(pair)}`)
      }
      add(pair[0], pair[1])
    }
  } else if (typeof headers.getMap === 'function' && typeof headers.get === 'function') {
    for (const name of HEADER_NAMES) add(name, headers.get(name))
  } else if (typeof headers === 'object') {
    for (const name of Object.keys(headers)) add(name, headers[name])
  } else {
    throw invalidArg(`polyctx.wire.${fn}: headers must be Headers, an object, a Map or [name, value] pairs, got ${typeName(headers)}`)
  }
  return out
}

// Sets outbound fields on Headers, a Map, an object, an array of pairs,
// gRPC Metadata, or an http.OutgoingMessage/ClientRequest.
function setFields(headers, fields, fn) {
  if (headers === null || typeof headers !== 'object') {
    throw invalidArg(`polyctx.wire.${fn}: headers must be Headers, an object, a Map or an array, got ${typeName(headers)}`)
  }
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]
    const value = fields[i + 1]
    if (typeof headers.setHeader === 'function') headers.setHeader(name, value)
    else if (typeof headers.set === 'function' && !(headers instanceof Map)) headers.set(name, value)
    else if (headers instanceof Map || Array.isArray(headers)) {
      const entries = headers instanceof Map ? [...headers.keys()] : null
      if (entries) {
        for (const k of entries) if (String(k).toLowerCase() === name) headers.delete(k)
        headers.set(name, value)
      } else {
        for (let j = headers.length - 1; j >= 0; j--) {
          if (String(headers[j][0]).toLowerCase() === name) headers.splice(j, 1)
        }
        headers.push([name, value])
      }
    } else {
      for (const k of Object.keys(headers)) if (k.toLowerCase() === name && k !== name) delete headers[k]
      headers[name] = value
    }
  }
  return headers
}

// ---------------------------------------------------------------------------
// Extract and inject

/**
 * The request context for inbound `headers`, derived from `parent`: done
 * when `parent` is, or when the budget the caller sent (shortest valid
 * timeout header, under `policy`) runs out, counted from `arrivedAt` (a
 * bigint from `clockNs()`, when the headers arrived; default now), so
 * time already spent in this hop comes off too. Inbound budgets only
 * shorten. Trace context and baggage are kept under `policy`.
 *
 * Returns `[ctx, cancel]`; `cancel(reason)` takes a cause, such as an
 * `EndReason`. Throws `MalformedHeader` when the protocol's own timeout
 * header is malformed. `policy` defaults to `Policy.external()`.
 */
function extract(parent, headers, policy, options) {
  const h = handle(parent, 'wire.extract')
  const p = policyOf(policy, external, 'extract')
  const arrived = options?.arrivedAt
  if (arrived !== undefined && typeof arrived !== 'bigint') {
    throw invalidArg(`polyctx.wire.extract: arrivedAt must be a bigint from clockNs(), got ${typeName(arrived)}`)
  }
  const result = native.extract(h, fieldsOf(headers, 'extract'), p[NATIVE], protocolOf(options, 'extract'), arrived)
  if (typeof result !== 'number') throw malformed(result)
  const ctx = wrap(result, linkOf(parent))
  return [ctx, cancelCauseFunc(ctx)]
}

/**
 * Writes what `ctx` carries into outbound `headers` for a destination
 * trusted as `policy` says (default `Policy.internal()`): the remaining
 * budget (rounded up, capped) in the protocol's timeout header, and
 * traceparent (plus, for internal destinations, tracestate and baggage).
 * Returns `headers`. When `ctx` is done or no time is left, throws its
 * error (`DeadlineExceeded` for a spent budget) and writes nothing.
 */
function inject(ctx, headers, policy, options) {
  const h = handle(ctx, 'wire.inject')
  const p = policyOf(policy, internalPolicy, 'inject')
  const result = native.inject(h, p[NATIVE], protocolOf(options, 'inject'))
  if (!Array.isArray(result)) throw ctx.err() ?? internal.withoutStacks(() => makeError(result, undefined))
  return setFields(headers, result, 'inject')
}

/** Now on the core's clock (nanoseconds), for `extract`'s `arrivedAt`. */
function clockNs() {
  return native.clockNs()
}

/** This hop's trace context, or `null`. */
function traceContext(ctx) {
  return fromParts(native.ctxTraceContext(handle(ctx, 'wire.traceContext')))
}

/** The caller's trace context when an external listener restarted the trace (keep it as a span link), or `null`. */
function traceLink(ctx) {
  return fromParts(native.ctxTraceLink(handle(ctx, 'wire.traceLink')))
}

/** The baggage `ctx` carries: a Map of key to BaggageEntry. */
function baggage(ctx) {
  return toMap(native.ctxBaggage(handle(ctx, 'wire.baggage')))
}

/** A child of `ctx` whose trace context is `trace` (baggage kept). */
function withTraceContext(ctx, trace) {
  const h = handle(ctx, 'wire.withTraceContext')
  if (!(trace instanceof TraceContext)) {
    throw invalidArg(`polyctx.wire.withTraceContext: trace must be a TraceContext, got ${typeName(trace)}`)
  }
  return wrap(native.withTraceContext(h, trace.traceId, trace.spanId, trace.flags), linkOf(ctx))
}

/** A child of `ctx` whose baggage is `entries` (trace context kept); throws `MalformedHeader` for a key that is not a token. */
function withBaggage(ctx, entries) {
  const h = handle(ctx, 'wire.withBaggage')
  const members = toMembers(entries, 'withBaggage')
  const check = native.formatBaggage(members)
  if (check !== null && typeof check === 'object') throw malformed(check)
  return wrap(native.withBaggage(h, members), linkOf(ctx))
}

module.exports = {
  MalformedHeader,
  parseGrpcTimeout,
  formatGrpcTimeout,
  parseTimeoutMs,
  formatTimeoutMs,
  TraceContext,
  parseTraceparent,
  parseTracestate,
  BaggageEntry,
  parseBaggage,
  formatBaggage,
  Policy,
  extract,
  inject,
  clockNs,
  traceContext,
  traceLink,
  baggage,
  withTraceContext,
  withBaggage,
  EndReason,
  HEADER_NAMES: Object.freeze([...HEADER_NAMES]),
}

// Whether OpenTelemetry's propagation API is registered in this process
// (its global, by the key @opentelemetry/api 1.x uses): it then owns
// traceparent and baggage, and the integrations send only the budget, as
// two writers of traceparent break traces.
function otelOwnsTrace() {
  const api = globalThis[Symbol.for('opentelemetry.js.api.1')]
  return api !== undefined && api.propagation !== undefined
}

// For the package's integrations (http, fetch, grpc, otel).
Object.assign(internal, { fieldsOf, setFields, otelOwnsTrace })
