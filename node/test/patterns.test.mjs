// The article's patterns (shared/reference/go-context-article.txt) as
// polyctx's promise helpers: the fan-out as a Group (Go's errgroup), retry
// with the core's Backoff, sleep and waitFor; each cancelled in the middle,
// leaving no timer or listener behind. And the HTTP handler deriving from
// the client's connection.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once, getEventListeners } from 'node:events'
import {
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  withValue,
  createKey,
  fromSignal,
  cause,
  current,
  Canceled,
  DeadlineExceeded,
  Group,
  group,
  retry,
  Backoff,
  RetryError,
  sleep,
  waitFor,
} from 'polyctx'
import { waitFor as within } from './fixtures/wait.mjs'

const LONG = 60_000 // "never", for a test: what would run this long must be stopped

function activeTimers() {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

/** Nothing the helpers started is left: no timer, and no listener on `signal`. */
function nothingLeft(timersBefore, ...signals) {
  assert.equal(activeTimers(), timersBefore, 'no timer left running')
  for (const s of signals) assert.equal(getEventListeners(s, 'abort').length, 0, 'no listener left on the signal')
}

// A downstream call that listens to its context, as every I/O should.
async function fetchService(ctx, latency) {
  await sleep(ctx, latency)
  return 'ok'
}

// -- Group -------------------------------------------------------------------------

test('the article\'s fan-out: at the deadline every slow call stops at once, leaving nothing behind', async () => {
  const timersBefore = activeTimers()
  const [ctx, cancel] = withTimeout(background(), 100, new Error('request budget spent'))
  const results = []
  const started = performance.now()
  try {
    const g = new Group(ctx)
    for (const ms of [10, 20, 5_000, 10_000]) g.go(async (ctx) => results.push(await fetchService(ctx, ms)))
    await assert.rejects(g.wait(), (e) => e instanceof DeadlineExceeded && e.cause.message === 'request budget spent')
    assert.ok(performance.now() - started < LONG / 4, 'returned at the deadline, not after the slowest call')
    assert.deepEqual(results, ['ok', 'ok']) // what came in time
    assert.ok(g.context.isDone())
    nothingLeft(timersBefore, ctx.signal, g.context.signal)
  } finally {
    cancel()
  }
})

test('group: the first error cancels the rest with itself as the cause, and is what it rejects with', async () => {
  const timersBefore = activeTimers()
  const seen = []
  const boom = new Error('backend 0 hung up')
  const tasks = [0, 1, 2, 3].map((i) => async (ctx) => {
    if (i === 0) {
      await sleep(ctx, 1)
      throw boom
    }
    try {
      await sleep(ctx, LONG)
    } finally {
      seen.push(cause(ctx))
    }
  })
  await assert.rejects(group(background(), tasks), (e) => e === boom)
  assert.deepEqual(seen, [boom, boom, boom])
  nothingLeft(timersBefore)
})

test('group: cancelled from its parent midway, every task stops and it rejects with the cause', async () => {
  const [parent, cancel] = withCancelCause(background())
  const g = new Group(parent)
  let started = 0
  for (let i = 0; i < 3; i++) {
    g.go(async (ctx) => {
      started++
      await sleep(ctx, LONG)
    })
  }
  setTimeout(() => cancel(new Error('client went away')), 10)
  const err = await within(g.wait().catch((e) => e), 'the group to stop')
  assert.equal(started, 3)
  assert.ok(err instanceof Canceled && err.cause.message === 'client went away')
})

test('group: tasks run with the group\'s context as current(), results come back in order', async () => {
  const results = await group(
    background(),
    [1, 2, 3].map((n) => async (ctx) => {
      assert.equal(current(), ctx)
      await sleep(ctx, 3 - n)
      return n * n
    }),
  )
  assert.deepEqual(results, [1, 4, 9])
  const g = new Group(background())
  const task = g.go(() => 'sync values and throws are fine too')
  assert.equal(await task, 'sync values and throws are fine too')
  g.go(() => {
    throw new Error('thrown synchronously')
  }) // its promise is handled by the group: no unhandled rejection
  await assert.rejects(g.wait(), /thrown synchronously/)
  assert.throws(() => g.go(async () => {}), /the group has ended/)
  assert.ok(g.context.err() instanceof Canceled) // the group's context ends with it

  // A task started as the last one settles, while wait() is settling: wait() waits for it too.
  const chained = new Group(background())
  const order = []
  chained
    .go(async () => order.push('first'))
    .then(() => chained.go(async (ctx) => (await sleep(ctx, 5), order.push('second'))))
  await chained.wait()
  assert.deepEqual(order, ['first', 'second'])
})

test('group: a limit bounds how many run at once; queued tasks never start once it is done', async () => {
  let running = 0
  let most = 0
  const started = []
  const [ctx, cancel] = withTimeout(background(), 200)
  const g = new Group(ctx, { limit: 2 })
  for (let i = 0; i < 8; i++) {
    g.go(async (ctx) => {
      started.push(i)
      running++
      most = Math.max(most, running)
      try {
        await sleep(ctx, i < 4 ? 5 : LONG)
      } finally {
        running--
      }
    })
  }
  await assert.rejects(g.wait(), DeadlineExceeded)
  cancel()
  assert.equal(most, 2)
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5]) // 4 and 5 ran into the deadline; 6 and 7 never started
})

test('group: bad input', async () => {
  assert.throws(() => new Group('ctx'), { code: 'ERR_INVALID_ARG_TYPE' })
  for (const limit of [0, -1, 1.5, '2']) {
    assert.throws(() => new Group(background(), { limit }), { code: 'ERR_OUT_OF_RANGE' })
  }
  assert.throws(() => new Group(background()).go('fn'), { code: 'ERR_INVALID_ARG_TYPE' })
  await assert.rejects(group(background(), [async () => 1, 'not a function']), { code: 'ERR_INVALID_ARG_TYPE' })
  await assert.rejects(group(background(), 42), TypeError)
})

// -- retry -------------------------------------------------------------------------

const quick = new Backoff({ initial: 1, max: 2, jitter: 0 })
const is503 = (e) => e.message === '503'

test('retry: until success, retrying only what is marked retryable', async () => {
  let calls = 0
  const flaky = async (attempt) => {
    assert.equal(attempt, ++calls)
    if (calls < 3) throw new Error('503')
    return 'answer'
  }
  assert.equal(await retry(background(), flaky, { retryable: is503, backoff: quick }), 'answer')
  assert.equal(calls, 3)

  let fatal = 0
  const badRequest = new Error('400')
  await assert.rejects(
    retry(background(), async () => (fatal++, Promise.reject(badRequest)), { retryable: is503, backoff: quick }),
    (e) => e === badRequest, // not retryable: rejected at once, as is
  )
  assert.equal(fatal, 1)

  const err = await retry(background(), async () => Promise.reject(new Error('503')), {
    retryable: is503,
    backoff: { initial: 1, maxAttempts: 2 },
  }).catch((e) => e)
  assert.ok(err instanceof RetryError && err.name === 'RetryError')
  assert.equal(err.reason, 'attempts')
  assert.equal(err.attempts, 2)
  assert.equal(err.lastError.message, '503')
  assert.equal(err.cause, err.lastError)
  assert.equal(err.message, 'gave up: out of attempts after 2 attempt(s); last error: 503')
})

test('retry: cancellation cuts the backoff short instead of waiting out every attempt', async () => {
  const timersBefore = activeTimers()
  const [ctx, cancel] = withCancelCause(background())
  let calls = 0
  const started = performance.now()
  const err = await retry(
    ctx,
    async () => {
      calls++
      setTimeout(() => cancel(new Error('client went away')), 10) // during the hour-long wait after this attempt
      throw new Error('503')
    },
    { retryable: is503, backoff: { initial: 3_600_000, max: 3_600_000, jitter: 0 } },
  ).catch((e) => e)
  assert.ok(performance.now() - started < LONG / 4, 'did not wait out the backoff')
  assert.equal(calls, 1)
  assert.equal(err.reason, 'canceled')
  assert.equal(err.cause.message, 'client went away')
  assert.equal(err.message, 'gave up: canceled (client went away) after 1 attempt(s); last error: 503')
  nothingLeft(timersBefore, ctx.signal)
})

test('retry: cancellation during an attempt ends it, and the retries', async () => {
  const [ctx, cancel] = withCancelCause(background())
  const err = await retry(
    ctx,
    async () => {
      setTimeout(() => cancel(new Error('client went away')), 10)
      await sleep(current(), LONG) // the attempt listens to its context
    },
    { retryable: () => true, backoff: quick },
  ).catch((e) => e)
  assert.equal(err.reason, 'canceled')
  assert.equal(err.attempts, 1)
  assert.equal(err.lastError, undefined) // the context ended it: not a failure
})

test('retry: never starts an attempt the budget cannot fit, and a deadline ends it', async () => {
  let attempts = 0
  const call = async () => {
    attempts++
    throw new Error('503')
  }
  // One attempt takes about a second; half a second holds none.
  const [short, cancelShort] = withTimeout(background(), 500)
  let err = await retry(short, call, { retryable: is503, backoff: { attemptTime: 1_000 } }).catch((e) => e)
  assert.equal(err.reason, 'deadline')
  assert.equal(attempts, 0)
  assert.equal(short.isDone(), false) // it gave up at once, without waiting out the budget
  cancelShort()

  // Waits of 1 ms, 100 ms, then 10 s: the third attempt is the last that fits.
  const [ctx, cancel] = withTimeout(background(), LONG / 6)
  err = await retry(ctx, call, {
    retryable: is503,
    backoff: { initial: 1, multiplier: 100, jitter: 0, attemptTime: LONG / 12 },
  }).catch((e) => e)
  assert.equal(err.reason, 'deadline')
  assert.equal(attempts, 3)
  assert.equal(err.cause, err.lastError)
  cancel()

  const [timed, cancelTimed] = withTimeout(background(), 20, new Error('budget'))
  err = await retry(timed, async () => sleep(current(), LONG), { retryable: () => true }).catch((e) => e)
  assert.equal(err.reason, 'deadline')
  assert.ok(err.cause instanceof DeadlineExceeded && err.cause.cause.message === 'budget')
  cancelTimed()
})

test('Backoff: the core\'s rules, and bad input', () => {
  const b = new Backoff({ initial: 10, max: 50, multiplier: 2, jitter: 0.5, maxAttempts: 5 })
  const bg = background()
  assert.deepEqual([0, 1, 2, 3, 4].map((n) => b.next(bg, n, 0)), [0, 10, 20, 40, 50])
  const jittered = b.next(bg, 1, 0.999)
  assert.ok(jittered > 4 && jittered < 6)
  assert.equal(b.next(bg, 5), 'attempts')
  const [ctx, cancel] = withCancel(bg)
  cancel()
  assert.equal(b.next(ctx, 1), 'canceled')
  const [expired] = withTimeout(bg, -1)
  assert.equal(b.next(expired, 1), 'deadline')
  assert.ok(Object.isFrozen(b) && b.maxAttempts === 5 && b.attemptTime === null)
  for (const [settings, match] of [
    [{ multiplier: 0.5 }, /multiplier/],
    [{ jitter: 2 }, /jitter/],
    [{ maxAttempts: 0 }, /maxAttempts/],
    [{ maxAttempts: 1.5 }, /maxAttempts/],
    [{ initial: -1 }, /initial must not be negative/],
    [{ max: Infinity }, /max must be a valid duration/],
  ]) {
    assert.throws(() => new Backoff(settings), { code: 'ERR_OUT_OF_RANGE', message: match })
  }
  assert.throws(() => new Backoff({ initial: '1s' }), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new Backoff(null), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => b.next(bg, -1), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => b.next(bg, 1, 1), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => b.next('ctx', 1), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('retry: bad input', async () => {
  await assert.rejects(retry(background(), async () => 1), { code: 'ERR_INVALID_ARG_TYPE', message: /retryable/ })
  await assert.rejects(retry(background(), 'fn', { retryable: () => true }), { code: 'ERR_INVALID_ARG_TYPE' })
  await assert.rejects(retry(background(), async () => 1, { retryable: () => true, backoff: { jitter: -1 } }), {
    code: 'ERR_OUT_OF_RANGE',
  })
})

// -- sleep and waitFor ---------------------------------------------------------------

test('sleep: runs its course, or ends the moment its context does', async () => {
  const timersBefore = activeTimers()
  await sleep(background(), 1)
  const [ctx, cancel] = withCancelCause(background())
  setTimeout(() => cancel(new Error('client went away')), 10)
  const started = performance.now()
  const err = await sleep(ctx, LONG).catch((e) => e)
  assert.ok(performance.now() - started < LONG / 4)
  assert.ok(err instanceof Canceled && err === ctx.err() && err.cause.message === 'client went away')
  await assert.rejects(sleep(ctx, LONG), Canceled) // already done: at once
  const [timed, cancelTimed] = withTimeout(background(), 10)
  await assert.rejects(sleep(timed, LONG), DeadlineExceeded)
  cancelTimed()
  nothingLeft(timersBefore, ctx.signal, timed.signal)
  assert.throws(() => sleep(background(), '10'), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => sleep(background(), NaN), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => sleep({}, 10), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('waitFor: settles as the promise does, or rejects when its context is done', async () => {
  assert.equal(await waitFor(background(), Promise.resolve('value')), 'value')
  await assert.rejects(waitFor(background(), Promise.reject(new Error('failed'))), /failed/)
  const [ctx, cancel] = withCancel(background())
  let resolveLate
  const late = new Promise((resolve) => (resolveLate = resolve))
  const waiting = waitFor(ctx, late)
  setTimeout(cancel, 10)
  await assert.rejects(waiting, Canceled)
  resolveLate('too late') // ignored
  const rejectedLater = new Promise((_, reject) => setTimeout(() => reject(new Error('ignored, never unhandled')), 5))
  await assert.rejects(waitFor(ctx, rejectedLater), Canceled)
  await sleep(background(), 20) // the rejection above happens here: no unhandled rejection fails the test
  assert.equal(getEventListeners(ctx.signal, 'abort').length, 0)
})

// -- the article's HTTP handler ------------------------------------------------------

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
      res.end(await fetchService(ctx, LONG))
      handlerResult('finished')
    } catch {
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
    assert.equal(await within(finished, 'the handler to stop'), 'client disconnected (trace 4bf92f35)')
  } finally {
    server.closeAllConnections()
    server.close()
  }
})
