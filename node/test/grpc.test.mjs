// polyctx/grpc against a real @grpc/grpc-js server and client on loopback
// (the service from fixtures/echo.proto, loaded with @grpc/proto-loader).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import grpc from '@grpc/grpc-js'
import protoLoader from '@grpc/proto-loader'
import { background, withTimeout, withCancelCause, cause, current, EndReason } from 'polyctx'
import { Policy, TraceContext, traceContext, baggage, withTraceContext, withBaggage } from 'polyctx/wire'
import { callOptions, interceptor, serverContext, unary } from 'polyctx/grpc'
import { waitFor } from './fixtures/wait.mjs'

const definition = protoLoader.loadSync(fileURLToPath(new URL('./fixtures/echo.proto', import.meta.url)))
const { Echo } = grpc.loadPackageDefinition(definition).polyctx.test

let server
let address
const seen = []

before(async () => {
  server = new grpc.Server()
  server.addService(Echo.service, {
    Echo: unary(
      (call, callback, ctx) => {
        const d = ctx.deadline()
        seen.push(ctx)
        callback(null, {
          text: call.request.text,
          budgetMs: d === null ? -1 : d.getTime() - Date.now(),
          traceId: traceContext(ctx)?.traceId ?? '',
          baggage: baggage(ctx).get('tenant')?.value ?? '',
        })
      },
      { policy: Policy.internal() },
    ),
    // The low-level helper: the handler ends the context itself.
    Wait(call, callback) {
      const [ctx, cancel] = serverContext(call, { policy: Policy.internal() })
      seen.push(ctx)
      const timer = setTimeout(() => {
        callback(null, { text: 'waited' })
        cancel(EndReason.requestFinished)
      }, call.request.ms || 60_000)
      ctx.signal.addEventListener('abort', () => clearTimeout(timer), { once: true })
    },
  })
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  )
  address = `127.0.0.1:${port}`
})

after(() => server.forceShutdown())

const call = (client, method, request, options) =>
  new Promise((resolve, reject) => client[method](request, options, (e, r) => (e ? reject(e) : resolve(r))))

test('the budget and trace travel to a grpc-js server, shrinking; the call context ends when answered', async () => {
  const client = new Echo(address, grpc.credentials.createInsecure(), { interceptors: [interceptor({ policy: Policy.internal() })] })
  try {
    const tc = TraceContext.random()
    const [ctx, cancel] = withTimeout(withBaggage(withTraceContext(background(), tc), { tenant: 'acme' }), 2000)
    await sleep(100)
    const reply = await call(client, 'Echo', { text: 'hi' }, callOptions(ctx))
    assert.equal(reply.text, 'hi')
    assert.ok(reply.budgetMs <= 1900 + 1 && reply.budgetMs > 1000, `${reply.budgetMs} ms left`)
    assert.equal(reply.traceId, tc.traceId)
    assert.equal(reply.baggage, 'acme', 'internal destination: baggage sent')
    const served = seen[seen.length - 1]
    await waitFor(served.done(), 'the end of the call')
    assert.equal(cause(served), EndReason.requestFinished)
    cancel()
  } finally {
    client.close()
  }
})

test('an external destination gets the budget and traceparent only; current() is used without callOptions', async () => {
  const client = new Echo(address, grpc.credentials.createInsecure(), { interceptors: [interceptor()] })
  try {
    const tc = TraceContext.random()
    const [ctx, cancel] = withTimeout(withBaggage(withTraceContext(background(), tc), { tenant: 'acme' }), 5000)
    const { run } = await import('polyctx')
    const reply = await run(ctx, () => call(client, 'Echo', { text: 'x' }, {}))
    assert.ok(reply.budgetMs <= 5000 && reply.budgetMs > 3000, `${reply.budgetMs}`)
    assert.equal(reply.traceId, tc.traceId)
    assert.equal(reply.baggage, '', 'no baggage to an external destination')
    assert.equal(current(), background())
    cancel()
  } finally {
    client.close()
  }
})

test('canceling the context cancels the call on both sides (peer canceled)', async () => {
  const client = new Echo(address, grpc.credentials.createInsecure(), { interceptors: [interceptor()] })
  try {
    const [ctx, cancel] = withCancelCause(background())
    const before = seen.length
    const pending = call(client, 'Wait', { ms: 0 }, callOptions(ctx))
    await waitFor(
      (async () => {
        while (seen.length === before) await sleep(1)
      })(),
      'the call to arrive',
    )
    const served = seen[seen.length - 1]
    cancel(EndReason.serverShutdown)
    const err = await pending.then(() => assert.fail('answered'), (e) => e)
    assert.equal(err.code, grpc.status.UNAVAILABLE, 'server shutdown maps to UNAVAILABLE')
    await waitFor(served.done(), 'the server side to see the cancel')
    assert.equal(cause(served), EndReason.peerCanceled)
  } finally {
    client.close()
  }
})

test('no time left: the call fails locally with DEADLINE_EXCEEDED and is never sent', async () => {
  const client = new Echo(address, grpc.credentials.createInsecure(), { interceptors: [interceptor()] })
  try {
    const before = seen.length
    const [spent] = withTimeout(background(), 0)
    const err = await call(client, 'Echo', { text: 'x' }, callOptions(spent)).then(() => assert.fail('answered'), (e) => e)
    assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED)
    const [done, cancel] = withCancelCause(background())
    cancel(EndReason.clientDisconnected)
    const err2 = await call(client, 'Echo', { text: 'x' }, callOptions(done)).then(() => assert.fail('answered'), (e) => e)
    assert.equal(err2.code, grpc.status.CANCELLED)
    await sleep(50)
    assert.equal(seen.length, before, 'the server saw neither call')
  } finally {
    client.close()
  }
})

test('a deadline in the context fires as DEADLINE_EXCEEDED on both sides', async () => {
  const client = new Echo(address, grpc.credentials.createInsecure(), { interceptors: [interceptor()] })
  try {
    const [ctx, cancel] = withTimeout(background(), 150)
    const before = seen.length
    const err = await call(client, 'Wait', { ms: 0 }, callOptions(ctx)).then(() => assert.fail('answered'), (e) => e)
    assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED)
    const served = seen[before]
    await waitFor(served.done(), 'the server-side deadline')
    assert.ok([EndReason.deadlineExceeded, EndReason.peerCanceled].includes(EndReason.of(served)), `${EndReason.of(served)?.reason}`)
    cancel()
  } finally {
    client.close()
  }
})
