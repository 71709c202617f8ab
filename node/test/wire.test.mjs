// polyctx/wire: the shared header vectors (tests/wire/vectors.json, which
// every language runs), and what only the JS face has: bigints, header
// containers, errors, extract/inject over them, end reasons.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { background, withTimeout, withCancelCause, cause, DeadlineExceeded, Canceled, wire as fromMain } from 'polyctx'
import * as wire from 'polyctx/wire'

const {
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
} = wire

/** The error `fn` throws, checked to be a `cls`. */
function thrown(fn, cls) {
  try {
    fn()
  } catch (e) {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${e}`)
    return e
  }
  assert.fail(`expected a ${cls.name} to be thrown`)
}

const vectors = JSON.parse(readFileSync(new URL('../../tests/wire/vectors.json', import.meta.url), 'utf8')).vectors

function inputs(v) {
  if (v.input_repeat) {
    const [prefix, unit, times, suffix] = v.input_repeat
    return [prefix + unit.repeat(times) + suffix]
  }
  return typeof v.input === 'string' ? [v.input] : v.input
}

function timeoutResult(fn) {
  try {
    const ns = fn()
    assert.ok(ns === null || typeof ns === 'bigint', `nanoseconds are bigints, got ${typeof ns}`)
    return ns === null ? null : ns.toString()
  } catch (e) {
    if (e instanceof MalformedHeader) return 'malformed'
    throw e
  }
}

function baggageJson(map) {
  return [...map].map(([k, e]) => [k, e.value, e.properties.map((p) => [...p])])
}

function run(v) {
  switch (v.kind) {
    case 'grpc-timeout':
      return timeoutResult(() => parseGrpcTimeout(inputs(v)[0]))
    case 'timeout-ms':
      return timeoutResult(() => parseTimeoutMs(inputs(v)[0], v.header))
    case 'format-grpc-timeout':
      return formatGrpcTimeout(BigInt(v.input))
    case 'format-timeout-ms':
      return formatTimeoutMs(BigInt(v.input))
    case 'traceparent': {
      const tc = parseTraceparent(inputs(v))
      return tc && { trace_id: tc.traceId, span_id: tc.spanId, flags: tc.flags }
    }
    case 'tracestate':
      return parseTracestate(inputs(v))
    case 'baggage':
      return baggageJson(parseBaggage(inputs(v)))
    case 'format-baggage':
      try {
        return formatBaggage(v.input.map(([k, value, props]) => [k, new BaggageEntry(value, props)]))
      } catch (e) {
        if (e instanceof MalformedHeader) return 'malformed'
        throw e
      }
    default:
      throw new Error(`unknown vector kind ${v.kind}`)
  }
}

test('every shared header vector gives its expected result', () => {
  assert.ok(vectors.length >= 100, `only ${vectors.length} vectors`)
  const failures = vectors.flatMap((v) => {
    const got = run(v)
    try {
      assert.deepStrictEqual(got, v.expect)
      return []
    } catch {
      return [`${v.kind} / ${v.name}: expected ${JSON.stringify(v.expect)}, got ${JSON.stringify(got)}`]
    }
  })
  assert.deepEqual(failures, [])
})

test('polyctx.wire is polyctx/wire', () => {
  assert.equal(fromMain.extract, extract)
  assert.equal(fromMain.Policy, Policy)
})

test('codecs check their arguments and say what is malformed', () => {
  const e = thrown(() => parseGrpcTimeout('1s'), MalformedHeader)
  assert.ok(e instanceof TypeError)
  assert.equal(e.code, 'ERR_POLYCTX_MALFORMED_HEADER')
  assert.equal(e.header, 'grpc-timeout')
  assert.equal(e.value, '1s')
  assert.deepEqual([e.grpcCode, e.connectCode, e.httpStatus], [13, 'invalid_argument', 400])
  assert.match(e.message, /malformed grpc-timeout header/)
  assert.equal(thrown(() => parseTimeoutMs('x', 'connect-timeout-ms'), MalformedHeader).header, 'connect-timeout-ms')
  assert.throws(() => parseGrpcTimeout(5), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.equal(formatTimeoutMs(1500n * 1000000n), '1500')
  assert.equal(formatGrpcTimeout(2_000_000), '2000000n', 'safe integers are accepted too')
  assert.throws(() => formatGrpcTimeout(1.5), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.equal(formatGrpcTimeout(-(2n ** 70n)), null, 'beyond i64: saturates')
  assert.equal(formatGrpcTimeout(2n ** 70n), '2147483S')
})

test('trace contexts are values', () => {
  const tc = new TraceContext('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 0x0b)
  assert.equal(tc.sampled, true)
  assert.equal(tc.toHeader(), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03', 'flags masked to 0x03')
  assert.ok(Object.isFrozen(tc))
  assert.equal(new TraceContext(tc.traceId, tc.spanId, 0).sampled, false)
  for (const bad of [
    ['4BF92F3577B34DA6A3CE929D0E0E4736', '00f067aa0ba902b7', 1],
    ['00000000000000000000000000000000', '00f067aa0ba902b7', 1],
    ['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 256],
    ['4bf92f3577b34da6a3ce929d0e0e4736', 'short', 1],
  ]) {
    assert.throws(() => new TraceContext(...bad), RangeError, bad.join(' '))
  }
  const r = TraceContext.random()
  assert.match(r.toHeader(), /^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/)
  assert.notEqual(TraceContext.random().traceId, r.traceId)
})

test('extract reads every kind of header container, case-insensitively', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const containers = [
    { 'Request-Timeout-Ms': '1500', traceparent: tp },
    new Headers({ 'request-timeout-ms': '1500', traceparent: tp }),
    new Map([['request-timeout-ms', '1500'], ['Traceparent', tp]]),
    [['REQUEST-TIMEOUT-MS', '1500'], ['traceparent', tp]],
    { 'request-timeout-ms': ['1500'], traceparent: [tp] }, // headersDistinct
  ]
  for (const headers of containers) {
    const before = Date.now()
    const [ctx, cancel] = extract(background(), headers, Policy.internal())
    const left = ctx.deadline().getTime() - before
    // The deadline is a monotonic time shown as a Date: a few ms of slack for the conversion.
    assert.ok(left > 1000 && left <= 1510, `${left} ms left`)
    assert.equal(traceContext(ctx).traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
    assert.notEqual(traceContext(ctx).spanId, '00f067aa0ba902b7', 'this hop has its own span')
    cancel()
  }
  assert.throws(() => extract(background(), 42), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => extract(background(), [['a']]), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => extract({}, {}), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => extract(background(), {}, {}), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => extract(background(), {}, Policy.internal(), { protocol: 'smtp' }), { code: 'ERR_INVALID_ARG_TYPE' })
})

test("a malformed protocol-native timeout fails the request; another protocol's is ignored", () => {
  const headers = { 'grpc-timeout': '5S', 'connect-timeout-ms': 'garbage', 'request-timeout-ms': '2000' }
  const [ctx] = extract(background(), headers, Policy.internal(), { protocol: 'grpc' })
  assert.ok(ctx.deadline().getTime() - Date.now() <= 2000)
  const e = thrown(() => extract(background(), headers, Policy.internal(), { protocol: 'connect' }), MalformedHeader)
  assert.equal(e.header, 'connect-timeout-ms')
})

test('budgets count from when the headers arrived', async () => {
  const arrivedAt = clockNs()
  await new Promise((resolve) => setTimeout(resolve, 120))
  const [ctx] = extract(background(), { 'request-timeout-ms': '1000' }, Policy.internal(), { arrivedAt })
  const left = ctx.deadline().getTime() - Date.now()
  assert.ok(left <= 1000 - 100 && left > 500, `${left} ms left, 120 ms after arrival`)
  assert.throws(() => extract(background(), {}, Policy.internal(), { arrivedAt: 5 }), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('inject writes into every kind of container, and fails locally when nothing is left', () => {
  const [ctx, cancel] = withTimeout(background(), 5000)
  const h = inject(ctx, new Headers(), Policy.internal())
  assert.ok(Number(h.get('request-timeout-ms')) <= 5000)
  const obj = inject(ctx, { 'Request-Timeout-Ms': 'stale' }, Policy.internal(), { protocol: 'grpc' })
  assert.match(obj['grpc-timeout'], /^\d+[num]$/)
  const pairs = inject(ctx, [['connect-timeout-ms', '1']], Policy.internal(), { protocol: 'connect' })
  assert.equal(pairs.length, 1)
  assert.ok(Number(pairs[0][1]) > 1000)
  const map = inject(ctx, new Map(), Policy.internal())
  assert.ok(map.has('request-timeout-ms'))
  cancel()
  assert.throws(() => inject(ctx, {}), Canceled, 'a canceled context sends nothing')

  const [spent] = withTimeout(background(), 0)
  const out = {}
  assert.throws(() => inject(spent, out), DeadlineExceeded)
  assert.deepEqual(out, {}, 'nothing was written')
  const [late] = extract(background(), { 'grpc-timeout': '1m' }, Policy.internal(), { arrivedAt: clockNs() - 10_000_000n })
  assert.throws(() => inject(late, out), DeadlineExceeded, 'past the deadline before the timer fired')
  assert.deepEqual(out, {})
})

test('the external policy clamps, defaults, restarts the trace and keeps only allowed baggage', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const inbound = { 'request-timeout-ms': '9999999999', traceparent: tp, baggage: 'tenant=a,user=bob', tracestate: 'x=1' }
  const policy = Policy.external({ baggageAllow: ['tenant'] })
  assert.deepEqual([policy.trust, policy.maxTimeout, policy.defaultTimeout], ['external', 300_000, 30_000])
  const [ctx] = extract(background(), inbound, policy)
  const left = ctx.deadline().getTime() - Date.now()
  assert.ok(left <= 300_000 && left > 299_000, `clamped: ${left}`)
  assert.equal(traceLink(ctx).traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
  assert.notEqual(traceContext(ctx).traceId, traceLink(ctx).traceId, 'a new trace')
  assert.deepEqual([...baggage(ctx).keys()], ['tenant'])
  const [quiet] = extract(background(), {}, policy)
  assert.ok(quiet.deadline().getTime() - Date.now() <= 30_000)
  const [none] = extract(background(), {}, Policy.internal())
  assert.equal(none.deadline(), null)

  // Sending: external destinations get only the budget and traceparent.
  const [internalCtx] = extract(background(), inbound, Policy.internal())
  const ext = inject(internalCtx, {}, Policy.external())
  assert.ok(ext.traceparent && !ext.baggage && !ext.tracestate)
  const int = inject(internalCtx, {}, Policy.internal())
  assert.equal(int.baggage, 'tenant=a,user=bob')
  assert.equal(int.tracestate, 'x=1')
  const off = inject(internalCtx, {}, Policy.internal({ propagateTrace: false }))
  assert.deepEqual(Object.keys(off), ['request-timeout-ms'], 'OpenTelemetry owns the trace headers')
  assert.equal(Policy.internal().withoutTrace().propagateTrace, false)

  assert.throws(() => Policy.external({ maxTimeout: -1 }), RangeError)
  assert.throws(() => Policy.external({ defaultTimeout: Infinity }), RangeError)
  assert.throws(() => new Policy('trusted'), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('trace context and baggage are values a context carries and derives', () => {
  const tc = TraceContext.random()
  const ctx = withBaggage(withTraceContext(background(), tc), { k: 'v w', p: new BaggageEntry('x', [['q', null]]) })
  assert.equal(traceContext(ctx).toHeader(), tc.toHeader())
  assert.equal(baggage(ctx).get('k').value, 'v w')
  const out = inject(ctx, {}, Policy.internal())
  assert.equal(out.traceparent, tc.toHeader())
  assert.equal(out.baggage, 'k=v%20w,p=x;q')
  assert.throws(() => withBaggage(background(), { 'bad key': 'v' }), MalformedHeader)
  assert.throws(() => withTraceContext(background(), {}), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.equal(traceContext(background()), null)
  assert.equal(baggage(background()).size, 0)
})

test("end reasons come from the core's table and travel as causes", () => {
  assert.deepEqual(
    EndReason.all.map((r) => [r.reason, r.grpcCode, r.connectCode, r.httpStatus]),
    [
      ['canceled', 1, 'canceled', 499],
      ['deadline_exceeded', 4, 'deadline_exceeded', 504],
      ['client_disconnected', 1, 'canceled', 499],
      ['peer_canceled', 1, 'canceled', 499],
      ['server_shutdown', 14, 'unavailable', 503],
      ['request_finished', 1, 'canceled', 499],
    ],
  )
  assert.equal(EndReason.clientDisconnected.message, 'client disconnected')
  assert.ok(EndReason.clientDisconnected instanceof Error && Object.isFrozen(EndReason.clientDisconnected))
  for (const r of EndReason.all) {
    const [ctx, cancel] = withCancelCause(background())
    assert.equal(EndReason.of(ctx), null)
    cancel(r)
    assert.equal(EndReason.of(ctx), r, r.reason)
    assert.ok(ctx.err() instanceof Canceled)
  }
  const [ctx, cancel] = extract(background(), {}, Policy.internal())
  cancel(EndReason.serverShutdown)
  assert.equal(cause(ctx), EndReason.serverShutdown, 'the cause is the reason itself')
  assert.equal(ctx.signal.reason.cause, EndReason.serverShutdown)
  assert.match(ctx.err().message, /context canceled: server shutting down/)
  const [timed] = withTimeout(background(), 0)
  assert.equal(EndReason.of(timed), EndReason.deadlineExceeded)
  const [c2, cancel2] = withCancelCause(background())
  cancel2(EndReason.deadlineExceeded)
  assert.ok(cause(c2) instanceof DeadlineExceeded, "Go's cancel(DeadlineExceeded)")
  assert.ok(c2.err() instanceof Canceled)
})
