// Worker threads: every native context of a worker is freed when the
// worker exits (the environment's cleanup hook), and contexts refuse to be
// cloned into a worker rather than arriving as empty objects.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { transferableAbortSignal } from 'node:util'
import { Worker, MessageChannel } from 'node:worker_threads'
import polyctx, { background, withCancel, withTimeout, createKey, fromSignal, cause } from 'polyctx'
import { settle } from '../bench/memory.mjs'
import { waitFor } from './fixtures/wait.mjs'

const hooks = polyctx[Symbol.for('polyctx.test')]
const url = new URL('../index.js', import.meta.url).pathname

/** Runs `body` in a new worker (with `p` = polyctx) and waits for it to exit; returns what it posted. */
async function inWorker(body, options = {}) {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads')
     const p = require(${JSON.stringify(url)})
     ${body}`,
    { eval: true, env: { ...process.env, POLYCTX_TEST_HOOKS: '1' }, ...options },
  )
  const messages = []
  worker.on('message', (m) => messages.push(m))
  const [code] = await waitFor(once(worker, 'exit'), 'the worker to exit', 60_000)
  assert.equal(code, 0)
  return messages
}

test("a worker's contexts are all freed when it exits, however many are live", { timeout: 300_000 }, async () => {
  const WORKERS = 30
  const CONTEXTS = 10_000
  // Every kind of context a worker may hold at exit: plain, with a pending
  // deadline, a read signal with a listener, a value, a pending after-func.
  const body = `
    const key = p.createKey('request')
    const [root] = p.withCancel(p.background())
    const kept = []
    for (let i = 0; i < ${CONTEXTS}; i++) {
      const [ctx] = i % 2 ? p.withTimeout(root, 3600000) : p.withCancel(root)
      if (i % 5 === 0) ctx.signal.addEventListener('abort', () => {})
      if (i % 7 === 0) p.afterFunc(ctx, () => {})
      kept.push(p.withValue(ctx, key, { i }))
    }
    parentPort.postMessage(p[Symbol.for('polyctx.test')].liveCounts())
  `
  await settle()
  const before = hooks.liveCounts()
  const rss = []
  for (let i = 0; i < WORKERS; i++) {
    const [inside] = await inWorker(body)
    assert.ok(inside.contexts >= before.contexts + 2 * CONTEXTS, 'the worker had them all live')
    if (i === 4 || i === WORKERS - 1) {
      await settle()
      rss.push(process.memoryUsage().rss)
    }
  }
  await settle()
  const after = hooks.liveCounts()
  for (const kind of ['contexts', 'keys', 'watches', 'deadlines']) {
    assert.equal(after[kind], before[kind], `${kind} live natively after ${WORKERS} workers exited`)
  }
  // Leaked, each worker's contexts cost over 3 MiB; allow a fifth of that
  // in allocator noise over the last 25 workers (measured: none).
  const perWorker = (rss[1] - rss[0]) / (WORKERS - 5)
  assert.ok(perWorker < 600 * 1024, `RSS grew ${(perWorker / 1024).toFixed(0)} KiB per worker`)
})

test('a context or key sent to another thread throws DataCloneError at the send', async () => {
  const [ctx, cancel] = withCancel(background())
  const key = createKey('k')
  const isCloneError = (e) => e instanceof DOMException && e.name === 'DataCloneError' && /polyctx: a Context or Key cannot be cloned/.test(e.message)
  for (const value of [ctx, key, { request: { ctx } }, [background()], new Map([['ctx', ctx]])]) {
    assert.throws(() => structuredClone(value), isCloneError)
    const { port1, port2 } = new MessageChannel()
    assert.throws(() => port1.postMessage(value), isCloneError)
    port1.close()
    port2.close()
  }
  assert.throws(() => new Worker('', { eval: true, workerData: { ctx } }), isCloneError)
  const worker = new Worker(`require('node:worker_threads').parentPort.on('message', () => {})`, { eval: true })
  assert.throws(() => worker.postMessage(ctx), isCloneError)
  await worker.terminate()
  // Still a plain object to JSON, as before.
  assert.equal(JSON.stringify({ ctx, key }), '{"ctx":{},"key":{"name":"k"}}')
  cancel()
})

test('what the DataCloneError suggests works: a transferable signal, and fromSignal in the worker', async () => {
  const [ctx, cancel] = withCancel(background())
  const signal = transferableAbortSignal(ctx.signal)
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads')
     const p = require(${JSON.stringify(url)})
     const [ctx, stop] = p.fromSignal(workerData.signal)
     const alive = setInterval(() => {}, 1000)
     ctx.done().then(() => {
       parentPort.postMessage(String(p.cause(ctx).name))
       stop()
       clearInterval(alive)
     })
     parentPort.postMessage('ready')`,
    { eval: true, workerData: { signal }, transferList: [signal] },
  )
  const messages = []
  const done = new Promise((resolve) =>
    worker.on('message', (m) => {
      messages.push(m)
      if (m === 'ready') cancel()
      else resolve()
    }),
  )
  await waitFor(done, 'the worker to see the cancellation')
  assert.deepEqual(messages, ['ready', 'AbortError'])
  await worker.terminate()
  assert.equal(cause(fromSignal(ctx.signal)[0]), ctx.err())
})
