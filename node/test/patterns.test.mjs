// The article's patterns (shared/reference/go-context-article.txt) with
// promises: the fan-out where every slow call stops at once and leaves no
// timer or listener behind, the retry loop whose backoff is cut short, the
// HTTP handler deriving from the client's connection, and request values.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once, getEventListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  withValue,
  createKey,
  fromSignal,
  cause,
  Canceled,
  DeadlineExceeded,
} from 'polyctx'
import { waitFor } from './fixtures/wait.mjs'

// A downstream call that listens to its context, as every I/O should.
async function fetchService(ctx, latency) {
  await sleep(latency, undefined, { signal: ctx.signal })
  return 'ok'
}

function activeTimers() {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

test('fan-out: when the deadline passes every slow call stops at once, leaving nothing behind', async () => {
  const timersBefore = activeTimers()
  const [ctx, cancel] = withTimeout(background(), 100, new Error('request budget spent'))
  try {
    const started = performance.now()
    const results = await Promise.allSettled([10, 20, 5_000, 10_000].map((ms) => fetchService(ctx, ms)))
    const elapsed = performance.now() - started
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'rejected'],
    )
    for (const r of results.slice(2)) assert.equal(r.reason.cause, ctx.err())
    assert.ok(ctx.err() instanceof DeadlineExceeded)
    assert.equal(cause(ctx).message, 'request budget spent')
    assert.ok(elapsed < 4_000, `returned after ${elapsed} ms, not after the slowest call`)
  } finally {
    cancel()
  }
  assert.equal(getEventListeners(ctx.signal, 'abort').length, 0, 'no listener left on the signal')
  assert.equal(activeTimers(), timersBefore, 'no timer left running')
})

test('fan-out: a canceled request stops every branch, including nested fan-outs', async () => {
  const [request, cancel] = withCancelCause(background())
  const branch = async (depth) => {
    const [ctx, cancelBranch] = withCancel(request)
    try {
      if (depth === 0) return await fetchService(ctx, 60_000)
      return await Promise.all([branch(depth - 1), branch(depth - 1)])
    } finally {
      cancelBranch()
    }
  }
  const all = Promise.allSettled([branch(3)])
  setImmediate(() => cancel(new Error('client disconnected')))
  const [result] = await waitFor(all, 'the branches to stop')
  assert.equal(result.status, 'rejected')
  assert.equal(result.reason.cause.cause.message, 'client disconnected')
})

// The article's retryWithBackoff, with promises.
async function retryWithBackoff(ctx, maxRetries, fn) {
  for (let attempt = 0; attempt < maxRetries; attempt++) {
    if (await fn()) return
    try {
      await sleep(10 * 2 ** attempt, undefined, { signal: ctx.signal })
    } catch {
      throw ctx.err() // stop retrying: canceled, or the deadline passed
    }
  }
  throw new Error('max retries exceeded')
}

test('retry: cancellation cuts the backoff short instead of waiting out every attempt', async () => {
  const [ctx, cancel] = withCancel(background())
  let calls = 0
  const started = performance.now()
  await assert.rejects(
    retryWithBackoff(ctx, 100, async () => {
      if (++calls === 3) cancel() // e.g. the client went away
      return false
    }),
    Canceled,
  )
  assert.equal(calls, 3)
  assert.ok(performance.now() - started < 5_000, 'did not wait out the remaining backoffs')
})

test('retry: a deadline ends the retries, and success ends them early', async () => {
  const [ctx, cancel] = withTimeout(background(), 50)
  let calls = 0
  await assert.rejects(
    retryWithBackoff(ctx, 100, async () => (calls++, false)),
    DeadlineExceeded,
  )
  assert.ok(calls >= 1 && calls < 10)
  cancel()
  const [ok, cancelOk] = withTimeout(background(), 10_000)
  let tries = 0
  await retryWithBackoff(ok, 5, async () => ++tries === 2)
  assert.equal(tries, 2)
  cancelOk()
  await assert.rejects(retryWithBackoff(background(), 2, async () => false), /max retries exceeded/)
})

test('HTTP handler: derive from the client connection; a disconnect stops downstream work', async () => {
  const traceKey = createKey('trace-id')
  let handlerResult
  const finished = new Promise((resolve) => (handlerResult = resolve))
  const server = createServer(async (req, res) => {
    // The request's context: canceled when the client goes away before the
    // response is done ('close' on the response, not the request, which
    // closes once the body is read).
    const client = new AbortController()
    res.on('close', () => {
      if (!res.writableFinished) client.abort(new Error('client disconnected'))
    })
    const [reqCtx, cancelReq] = fromSignal(client.signal)
    const [ctx, cancel] = withTimeout(withValue(reqCtx, traceKey, req.headers['x-trace-id']), 10_000)
    try {
      res.writeHead(200)
      res.write(`trace ${ctx.value(traceKey)}\n`)
      res.end(await fetchService(ctx, 60_000))
      handlerResult('finished')
    } catch (e) {
      handlerResult(`${cause(ctx).message} (trace ${ctx.value(traceKey)})`)
      res.destroy()
    } finally {
      cancel()
      cancelReq()
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const client = new AbortController()
    const res = await fetch(`http://127.0.0.1:${server.address().port}/`, {
      headers: { 'x-trace-id': '4bf92f35' },
      signal: client.signal,
    })
    const reader = res.body.getReader()
    await reader.read() // the handler is now waiting on its downstream call
    client.abort()
    assert.equal(await waitFor(finished, 'the handler to stop'), 'client disconnected (trace 4bf92f35)')
  } finally {
    server.closeAllConnections()
    server.close()
  }
})
