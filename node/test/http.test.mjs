// polyctx/http and polyctx/fetch against real servers on loopback:
// node:http, node:http2 (compatibility API), Express 5, Fastify 5, and
// fetch (global and undici's). Client disconnects cancel within 50 ms;
// budgets shrink by the time each hop spends; 1,000 requests leave
// nothing behind.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import http2 from 'node:http2'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import express from 'express'
import Fastify from 'fastify'
import { fetch as undiciFetch, Agent } from 'undici'
import { current, cause, background, withTimeout, withCancelCause, DeadlineExceeded, Canceled, EndReason } from 'polyctx'
import { Policy, traceContext } from 'polyctx/wire'
import { requestContext, contextOf, middleware, handler, fastifyPlugin, stats } from 'polyctx/http'
import { fetch, bind } from 'polyctx/fetch'
import { waitFor } from './fixtures/wait.mjs'

const hooks = (await import('polyctx')).default[Symbol.for('polyctx.test')]
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

async function listen(server) {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${server.address().port}`
}

function close(server) {
  server.closeAllConnections?.()
  return new Promise((resolve) => server.close(resolve))
}

/** A request whose socket the client destroys once the server has the request. */
function abandon(url, headers = {}) {
  const req = http.request(url, { headers, agent: false })
  req.on('error', () => {})
  req.end()
  return req
}

test('node:http: the request context has the budget and trace, ends with the response', async () => {
  let seen
  const server = http.createServer((req, res) => {
    const ctx = requestContext(req, res, { policy: Policy.internal() })
    assert.equal(requestContext(req, res), ctx, 'one context per request')
    assert.equal(contextOf(req), ctx)
    seen = { ctx, left: ctx.deadline().getTime() - Date.now(), trace: traceContext(ctx) }
    res.end('ok')
  })
  const base = await listen(server)
  try {
    const r = await globalThis.fetch(base, { headers: { 'request-timeout-ms': '1500', traceparent: TP } })
    assert.equal(await r.text(), 'ok')
    assert.ok(seen.left > 1000 && seen.left <= 1500, `${seen.left} ms left`)
    assert.equal(seen.trace.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
    await waitFor(seen.ctx.done(), 'the end of the request')
    assert.equal(cause(seen.ctx), EndReason.requestFinished)
    assert.equal(EndReason.of(seen.ctx).httpStatus, 499)
  } finally {
    await close(server)
  }
})

test('node:http: the external policy (the default) clamps and defaults budgets; a malformed one is a 400', async () => {
  const lefts = []
  const server = http.createServer(
    handler((req, res, ctx) => {
      lefts.push(ctx.deadline().getTime() - Date.now())
      assert.equal(current(), ctx, 'the handler runs with the context as current()')
      res.end()
    }),
  )
  const base = await listen(server)
  try {
    await globalThis.fetch(base, { headers: { 'request-timeout-ms': '9999999' } })
    await globalThis.fetch(base)
    const bad = await globalThis.fetch(base, { headers: { 'request-timeout-ms': '1.5' } })
    assert.equal(bad.status, 400)
    assert.match(await bad.text(), /malformed request-timeout-ms header/)
    assert.ok(lefts[0] <= 300_000 && lefts[0] > 299_000, `clamped to 300 s: ${lefts[0]}`)
    assert.ok(lefts[1] <= 30_000 && lefts[1] > 29_000, `30 s by default: ${lefts[1]}`)
    assert.equal(lefts.length, 2)
  } finally {
    await close(server)
  }
})

test('a client disconnect cancels the request context within 50 ms (node:http, Express, Fastify)', async (t) => {
  const arrived = []
  const onArrive = (ctx) => {
    const entry = { ctx, abortedAt: null }
    ctx.signal.addEventListener('abort', () => (entry.abortedAt = performance.now()), { once: true })
    arrived.push(entry)
    return ctx.done()
  }
  const plain = http.createServer(handler(async (req, res, ctx) => onArrive(ctx)))
  const app = express()
  app.use(middleware())
  app.get('/', async (req) => onArrive(req.ctx))
  const viaExpress = http.createServer(app)
  const fastify = Fastify()
  await fastify.register(fastifyPlugin)
  fastify.get('/', async (request) => {
    await onArrive(request.ctx)
    return 'late'
  })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const servers = [
    ['node:http', await listen(plain)],
    ['express', await listen(viaExpress)],
    ['fastify', `http://127.0.0.1:${fastify.server.address().port}`],
  ]
  const latencies = {}
  try {
    for (const [name, base] of servers) {
      latencies[name] = []
      for (let i = 0; i < 10; i++) {
        const before = arrived.length
        const req = abandon(base)
        await waitFor(waitUntil(() => arrived.length > before), `${name}: the request to arrive`)
        const entry = arrived[arrived.length - 1]
        const start = performance.now()
        req.destroy()
        await waitFor(entry.ctx.done(), `${name}: the cancel`)
        latencies[name].push(entry.abortedAt - start)
        assert.equal(cause(entry.ctx), EndReason.clientDisconnected, name)
        assert.ok(entry.ctx.err() instanceof Canceled)
      }
    }
  } finally {
    await close(plain)
    await close(viaExpress)
    await fastify.close()
  }
  for (const [name, ms] of Object.entries(latencies)) {
    ms.sort((a, b) => a - b)
    const median = ms[ms.length >> 1]
    t.diagnostic(`${name}: disconnect -> abort median ${median.toFixed(2)} ms, max ${ms[ms.length - 1].toFixed(2)} ms`)
    assert.ok(median < 50, `${name}: median ${median} ms`)
  }
})

async function waitUntil(cond) {
  while (!cond()) await sleep(1)
}

test('Express 5 and Fastify 5: current() survives body parsing; req.ctx / request.ctx', async () => {
  const app = express()
  app.use(middleware({ policy: Policy.internal() }))
  app.use(express.json())
  app.post('/', (req, res) => res.json({ same: current() === req.ctx, left: req.ctx.deadline().getTime() - Date.now() }))
  const viaExpress = http.createServer(app)
  const fastify = Fastify()
  await fastify.register(fastifyPlugin, { policy: Policy.internal() })
  fastify.post('/', async (request) => ({ same: current() === request.ctx, left: request.ctx.deadline().getTime() - Date.now() }))
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  try {
    for (const base of [await listen(viaExpress), `http://127.0.0.1:${fastify.server.address().port}`]) {
      // The body arrives after a pause, in its own packets.
      const body = await new Promise((resolve, reject) => {
        const req = http.request(base, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'request-timeout-ms': '5000', 'transfer-encoding': 'chunked' },
        })
        req.on('response', (res) => {
          let text = ''
          res.on('data', (c) => (text += c))
          res.on('end', () => resolve(JSON.parse(text)))
        })
        req.on('error', reject)
        req.flushHeaders()
        setTimeout(() => req.end('{"a": 1}'), 200)
      })
      assert.equal(body.same, true, base)
      // The budget counts from the headers' arrival, so the pause before the
      // body comes off it (generously: the headers may reach the server late).
      assert.ok(body.left <= 5000 - 100 && body.left > 3000, `${base}: ${body.left}`)
    }
    const bad = await globalThis.fetch(`http://127.0.0.1:${fastify.server.address().port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'request-timeout-ms': 'soon' },
      body: '{}',
    })
    assert.equal(bad.status, 400)
  } finally {
    await close(viaExpress)
    await fastify.close()
  }
})

test('node:http2 (compatibility API): budget, trace and disconnect', async () => {
  let entry = null
  const server = http2.createServer(
    handler((req, res, ctx) => {
      entry = { ctx, left: ctx.deadline().getTime() - Date.now() }
      if (req.url === '/hang') return
      res.end('ok')
    }, { policy: Policy.internal() }),
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const session = http2.connect(`http://127.0.0.1:${server.address().port}`)
  try {
    const stream = session.request({ ':path': '/', 'request-timeout-ms': '2000' })
    stream.resume()
    await once(stream, 'end')
    assert.ok(entry.left > 1000 && entry.left <= 2000, `${entry.left}`)
    await waitFor(entry.ctx.done(), 'the end of the request')
    assert.equal(cause(entry.ctx), EndReason.requestFinished)
    entry = null
    const hang = session.request({ ':path': '/hang', 'request-timeout-ms': '60000' })
    hang.on('error', () => {})
    await waitFor(waitUntil(() => entry !== null), 'the request to arrive')
    hang.close(http2.constants.NGHTTP2_CANCEL)
    await waitFor(entry.ctx.done(), 'the cancel')
    assert.equal(cause(entry.ctx), EndReason.clientDisconnected)
  } finally {
    session.destroy()
    server.close()
  }
})

test('budgets shrink by the time each hop spends (Express -> Fastify -> node:http, over fetch)', async () => {
  const internal = Policy.internal()
  const budgets = {}
  const hop3 = http.createServer(
    handler(
      (req, res, ctx) => {
        budgets.hop3 = ctx.deadline().getTime() - Date.now()
        budgets.trace3 = traceContext(ctx).traceId
        res.end('3')
      },
      { policy: internal },
    ),
  )
  const hop3Url = await listen(hop3)
  const fastify = Fastify()
  await fastify.register(fastifyPlugin, { policy: internal })
  fastify.get('/', async (request) => {
    budgets.hop2 = request.ctx.deadline().getTime() - Date.now()
    await sleep(100)
    const r = await fetch(request.ctx, hop3Url, undefined, { policy: internal, fetch: undiciFetch })
    return `2${await r.text()}`
  })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const app = express()
  app.use(middleware({ policy: internal }))
  app.get('/', async (req, res) => {
    budgets.hop1 = req.ctx.deadline().getTime() - Date.now()
    await sleep(100)
    const r = await fetch(req.ctx, `http://127.0.0.1:${fastify.server.address().port}/`, undefined, { policy: internal })
    res.send(`1${await r.text()}`)
  })
  const hop1 = http.createServer(app)
  const base = await listen(hop1)
  try {
    const r = await globalThis.fetch(base, { headers: { 'request-timeout-ms': '3000', traceparent: TP } })
    assert.equal(await r.text(), '123')
    assert.ok(budgets.hop1 <= 3000 && budgets.hop1 > 2000, `hop 1: ${budgets.hop1}`)
    // Sent rounded up to the millisecond: up to 1 ms more per hop.
    assert.ok(budgets.hop2 <= budgets.hop1 - 100 + 1 && budgets.hop2 > 1500, `hop 2: ${budgets.hop2} after ${budgets.hop1}`)
    assert.ok(budgets.hop3 <= budgets.hop2 - 100 + 1 && budgets.hop3 > 1000, `hop 3: ${budgets.hop3} after ${budgets.hop2}`)
    assert.equal(budgets.trace3, '4bf92f3577b34da6a3ce929d0e0e4736', 'one trace across the hops')
  } finally {
    await close(hop1)
    await fastify.close()
    await close(hop3)
  }
})

test('fetch: headers from the context, aborted with the reason, refused with no time left', async () => {
  let headers
  let hold = null
  const server = http.createServer((req, res) => {
    headers = req.headersDistinct
    if (req.url === '/slow') {
      hold = res
      return
    }
    res.end('ok')
  })
  const base = await listen(server)
  try {
    const [ctx, cancel] = withTimeout(background(), 4000)
    await (await fetch(ctx, base, { headers: { 'x-mine': '1' } })).text()
    assert.ok(Number(headers['request-timeout-ms'][0]) <= 4000)
    assert.equal(headers['x-mine'][0], '1')
    assert.equal(headers.traceparent, undefined, 'no trace context in ctx: none sent')
    const get = bind(ctx, { protocol: 'connect', fetch: undiciFetch })
    await (await get(base)).text()
    assert.ok(Number(headers['connect-timeout-ms'][0]) <= 4000)
    cancel()

    const [spent] = withTimeout(background(), 0)
    const before = stats()
    await assert.rejects(fetch(spent, base), DeadlineExceeded)
    assert.deepEqual(stats(), before)

    const [live, end] = withCancelCause(background())
    const pending = fetch(live, `${base}/slow`)
    await waitFor(waitUntil(() => hold !== null), 'the slow request')
    end(EndReason.serverShutdown)
    const err = await pending.then(
      () => assert.fail('resolved'),
      (e) => e,
    )
    assert.equal(err, live.err(), 'the rejection is the signal reason')
    assert.equal(err.name, 'AbortError')
    assert.equal(err.cause, EndReason.serverShutdown)
    hold.end()

    // A signal of the caller's own also aborts.
    const ac = new AbortController()
    const own = fetch(background(), `${base}/slow`, { signal: ac.signal })
    ac.abort(new Error('mine'))
    await assert.rejects(own, /mine/)
    await assert.rejects(fetch({}, base), { code: 'ERR_INVALID_ARG_TYPE' })
  } finally {
    hold?.end()
    await close(server)
  }
})

test('1,000 requests with a context each leave no listeners, timers or native handles behind', async () => {
  const app = express()
  app.use(middleware({ policy: Policy.internal() }))
  app.get('/', async (req, res) => {
    await sleep(1, undefined, { signal: req.ctx.signal })
    res.send(String(current() === req.ctx))
  })
  const server = http.createServer(app)
  const base = await listen(server)
  const agent = new Agent({ connections: 8 })
  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      await sleep(10)
      globalThis.gc()
    }
  }
  await undiciFetch(base, { dispatcher: agent }).then((r) => r.text()) // warm up
  await settle()
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = { native: hooks.liveCounts(), timers: timers(), rss: process.memoryUsage().rss }
  try {
    for (let batch = 0; batch < 20; batch++) {
      const replies = await Promise.all(
        Array.from({ length: 50 }, () =>
          undiciFetch(base, { dispatcher: agent, headers: { 'request-timeout-ms': '10000' } }).then((r) => r.text()),
        ),
      )
      assert.ok(replies.every((r) => r === 'true'))
    }
    // Keep-alive connections hold their last request; let them go.
    await agent.close()
    await close(server)
    await settle()
    const after = { native: hooks.liveCounts(), timers: timers(), rss: process.memoryUsage().rss }
    assert.equal(stats().inFlight, 0)
    assert.equal(after.native.deadlines, before.native.deadlines, 'every deadline disarmed')
    assert.equal(after.native.watches, before.native.watches, 'no signal or after-func left waiting')
    assert.ok(after.native.contexts <= before.native.contexts + 5, `context handles: ${before.native.contexts} -> ${after.native.contexts}`)
    assert.ok(after.native.held <= before.native.held + 5, `held values: ${before.native.held} -> ${after.native.held}`)
    assert.ok(after.timers <= before.timers, `timers: ${before.timers} -> ${after.timers}`)
    assert.ok(after.rss - before.rss < 64 * 1024 * 1024, `RSS grew ${(after.rss - before.rss) / 1e6} MB`)
  } finally {
    if (!agent.closed && !agent.destroyed) await agent.close().catch(() => {})
    if (server.listening) await close(server)
  }
})
