// polyctx/otel beside OpenTelemetry JS (SDK, http and undici
// instrumentations): exactly one traceparent on the wire, the budget
// carried by polyctx. Runs fixtures/otel-app.cjs in a process of its own,
// since the instrumentations must load before node:http and undici.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { background, withTimeout } from 'polyctx'
import { TraceContext, withTraceContext, traceContext } from 'polyctx/wire'
import { DeadlinePropagator, toOtel, fromOtel, POLYCTX_KEY } from 'polyctx/otel'
import * as api from '@opentelemetry/api'

test('with OpenTelemetry present, exactly one traceparent reaches the wire, and the budget travels', () => {
  const run = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/otel-app.cjs', import.meta.url))], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  assert.equal(run.status, 0, run.stderr)
  const { seen, received, spans } = JSON.parse(run.stdout)
  // The script's own client is instrumented too, and starts the trace.
  assert.match(seen.otelTrace, /^[0-9a-f]{32}$/)
  assert.equal(seen.polyctxTrace, seen.otelTrace, 'polyctx read the same trace')
  assert.equal(seen.adapted, seen.otelTrace)
  assert.deepEqual(received.map((r) => r.path), ['/helper', '/plain', '/http'])
  for (const r of received) {
    assert.equal(r.traceparent.length, 1, `${r.path}: ${JSON.stringify(r.traceparent)}`)
    assert.match(r.traceparent[0], new RegExp(`^00-${seen.otelTrace}-[0-9a-f]{16}-01$`), r.path)
    assert.ok(r.timeout.length >= 1, `${r.path}: a budget`)
    assert.ok(Number(r.timeout[0]) <= 5000 && Number(r.timeout[0]) > 3000, `${r.path}: ${r.timeout}`)
  }
  assert.equal(received[1].timeout.length, 1, 'plain fetch: the budget once, from the propagator')
  assert.equal(received[2].timeout.length, 1, 'http.request: the budget once, from the propagator')
  assert.ok(spans >= 4, `${spans} spans`)
})

test('DeadlinePropagator and the adapters, without an SDK', () => {
  const p = new DeadlinePropagator()
  assert.deepEqual(p.fields(), ['request-timeout-ms'])
  const [ctx, cancel] = withTimeout(withTraceContext(background(), TraceContext.random()), 3000)
  const carrier = {}
  p.inject(toOtel(ctx, api.ROOT_CONTEXT), carrier, api.defaultTextMapSetter)
  assert.ok(Number(carrier['request-timeout-ms']) <= 3000)
  assert.equal(carrier.traceparent, undefined, "the trace is OpenTelemetry's to send")
  const extracted = p.extract(api.ROOT_CONTEXT, { 'request-timeout-ms': '1000' }, api.defaultTextMapGetter)
  const inbound = extracted.getValue(POLYCTX_KEY)
  assert.ok(inbound.deadline().getTime() - Date.now() <= 1000)
  assert.equal(fromOtel(extracted), inbound)
  assert.equal(p.extract(api.ROOT_CONTEXT, { 'request-timeout-ms': 'bad' }, api.defaultTextMapGetter), api.ROOT_CONTEXT)
  const otelCtx = toOtel(ctx, api.ROOT_CONTEXT)
  assert.equal(api.trace.getSpanContext(otelCtx).traceId, traceContext(ctx).traceId)
  const viaSpan = fromOtel(api.trace.setSpanContext(api.ROOT_CONTEXT, api.trace.getSpanContext(otelCtx)), background())
  assert.equal(traceContext(viaSpan).traceId, traceContext(ctx).traceId)
  cancel()
  const [spent] = withTimeout(background(), 0)
  const none = {}
  p.inject(toOtel(spent, api.ROOT_CONTEXT), none, api.defaultTextMapSetter)
  assert.deepEqual(none, {}, 'nothing to send')
})
