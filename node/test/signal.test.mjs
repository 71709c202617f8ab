// ctx.signal and the event loop: synchronous aborts from JS, prompt aborts
// from native threads (the core's timer thread, or any other), fromSignal
// both ways, and the process never kept alive by a pending deadline.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import polyctx, {
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  withDeadline,
  withValue,
  createKey,
  afterFunc,
  cause,
  fromSignal,
  Canceled,
  DeadlineExceeded,
} from 'polyctx'

import { waitFor, aborted } from './fixtures/wait.mjs'
import { settle } from '../bench/memory.mjs'

const hooks = polyctx[Symbol.for('polyctx.test')]

test('cancel() aborts signals synchronously, parent first, before it returns (as AbortController.abort)', () => {
  const [root, cancel] = withCancel(background())
  const [child] = withCancel(root)
  const [grandchild] = withTimeout(child, 3600_000)
  const order = []
  for (const [name, ctx] of [
    ['grandchild', grandchild],
    ['root', root],
    ['child', child],
  ]) {
    ctx.signal.addEventListener('abort', () => order.push(`${name}:${ctx.signal.reason.name}`))
  }
  cancel()
  order.push('returned')
  assert.deepEqual(order, ['root:AbortError', 'child:AbortError', 'grandchild:AbortError', 'returned'])
  assert.equal(child.signal.reason, child.err())
  assert.equal(grandchild.signal.reason.cause, undefined)
})

test('the signal is made once, lazily, and is a real AbortSignal', () => {
  const [ctx, cancel] = withCancel(background())
  const signal = ctx.signal
  assert.ok(signal instanceof AbortSignal)
  assert.equal(ctx.signal, signal)
  assert.equal(signal.aborted, false)
  let onabort = 0
  signal.onabort = () => onabort++
  cancel()
  assert.equal(onabort, 1, "the user's onabort is kept")
  assert.throws(() => signal.throwIfAborted(), Canceled)
})

test('reason names: AbortError for Canceled, TimeoutError for DeadlineExceeded, with the cause attached', async () => {
  const [canceled, cancel] = withCancelCause(background())
  cancel(new Error('client went away'))
  assert.equal(canceled.signal.reason.name, 'AbortError')
  assert.equal(canceled.signal.reason.cause.message, 'client went away')
  assert.equal(canceled.signal.reason.message, 'context canceled: client went away')

  const [timed] = withTimeout(background(), 10, new Error('budget spent'))
  await waitFor(timed.done())
  const reason = timed.signal.reason
  assert.equal(reason.name, 'TimeoutError')
  assert.ok(reason instanceof DeadlineExceeded)
  assert.equal(reason.cause.message, 'budget spent')
  // The classic check code written for AbortSignal.timeout keeps working.
  const kind = (e) => (e.name === 'TimeoutError' ? 'timeout' : e.name === 'AbortError' ? 'aborted' : 'other')
  assert.equal(kind(reason), 'timeout')
  assert.equal(kind(canceled.signal.reason), 'aborted')
})

test('a deadline fires on the timer thread and reaches JS promptly, through the event loop', async () => {
  const [parent] = withTimeout(background(), 30, 'late')
  const [child] = withCancel(parent)
  const aborted = []
  const both = Promise.all(
    [parent, child].map(
      (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(aborted.push(ctx)))),
    ),
  )
  await waitFor(both, 'the deadline')
  assert.equal(aborted[0], parent, 'the parent aborts before its child')
  assert.equal(child.signal.reason.cause, 'late')
})

test('cancellation from another native thread aborts signals on the JS thread', async () => {
  const [ctx, cancel] = withCancelCause(background())
  const [child] = withCancel(ctx)
  const key = createKey('k')
  const deep = withValue(child, key, 'v')
  const abort = aborted(deep.signal)
  assert.deepEqual(Object.getOwnPropertySymbols(ctx), [], 'no handle leaks out of a context')
  // The same core cancel a C library's thread would make.
  cancelFromThread(ctx, 'from C')
  await waitFor(abort, 'the abort from another thread')
  assert.equal(deep.signal.reason.cause.message, 'from C', 'a cause from another language reads as an Error')
  assert.equal(cause(deep).message, 'from C')
  cancel('too late')
})

function cancelFromThread(ctx, text) {
  assert.ok(hooks, 'run with POLYCTX_TEST_HOOKS=1 (make test-node does)')
  assert.equal(hooks.cancelFromThread(ctx, text), true)
}

test('err() and isDone() on the JS thread never disagree with signal.aborted', async () => {
  for (let i = 0; i < 20; i++) {
    const [ctx] = withTimeout(background(), 1)
    const signal = ctx.signal
    await new Promise((resolve) => setTimeout(resolve, 5))
    // The timer thread may have fired before the event loop delivered the
    // abort; asking the context first makes the signal catch up at once.
    if (ctx.isDone()) assert.equal(signal.aborted, true)
    await waitFor(ctx.done())
    assert.equal(signal.reason, ctx.err())
  }
})

test('fromSignal: the signal aborting cancels the context with its reason as the cause', () => {
  const ac = new AbortController()
  const [parent] = withCancel(background())
  const [ctx, cancel] = fromSignal(ac.signal, parent)
  const [child] = withCancel(ctx)
  const reason = new Error('user pressed stop')
  ac.abort(reason)
  assert.ok(child.err() instanceof Canceled)
  assert.equal(cause(child), reason)
  assert.equal(child.signal.reason.cause, reason)
  assert.equal(parent.err(), null)
  cancel()
})

test('fromSignal: an aborted signal gives a done context; the parent still cancels it', () => {
  const [done] = fromSignal(AbortSignal.abort('early'))
  assert.equal(cause(done), 'early')
  const [parent, cancelParent] = withCancel(background())
  const ac = new AbortController()
  const [ctx] = fromSignal(ac.signal, parent)
  cancelParent()
  assert.ok(ctx.err() instanceof Canceled)
  ac.abort('after')
  assert.ok(cause(ctx) instanceof Canceled, 'the first cancellation wins')
})

test('fromSignal: done contexts stop listening to the source signal', async () => {
  const { getEventListeners } = await import('node:events')
  const ac = new AbortController()
  for (let i = 0; i < 100; i++) {
    const [, cancel] = fromSignal(ac.signal)
    cancel()
  }
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0)
})

test('fromSignal: one listener per source signal, however many contexts; no MaxListenersExceededWarning', async () => {
  const { getEventListeners } = await import('node:events')
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    const shutdown = new AbortController()
    const requests = Array.from({ length: 50 }, () => fromSignal(shutdown.signal))
    assert.equal(getEventListeners(shutdown.signal, 'abort').length, 1)
    await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on a later tick
    assert.deepEqual(warnings.map((w) => w.name), [])
    const reason = new Error('shutting down')
    shutdown.abort(reason)
    for (const [ctx] of requests) assert.equal(cause(ctx), reason)
    assert.equal(getEventListeners(shutdown.signal, 'abort').length, 0)
  } finally {
    process.off('warning', onWarning)
  }
})

test('fromSignal: contexts dropped without cancel() are let go, and the signal stops listening', async () => {
  const { getEventListeners } = await import('node:events')
  const shutdown = new AbortController()
  await settle()
  const before = hooks.liveCounts()
  ;(() => {
    for (let i = 0; i < 1000; i++) {
      const [ctx] = fromSignal(shutdown.signal)
      void ctx.signal // forgotten: no cancel() call
    }
  })()
  assert.equal(getEventListeners(shutdown.signal, 'abort').length, 1)
  await settle(() => getEventListeners(shutdown.signal, 'abort').length === 0)
  assert.equal(getEventListeners(shutdown.signal, 'abort').length, 0, 'nothing listens once they are gone')
  const after = hooks.liveCounts()
  assert.ok(after.contexts <= before.contexts && after.watches <= before.watches, JSON.stringify({ before, after }))
})

test('fromSignal: a context dropped early still reaches everything derived from it', async () => {
  const { getEventListeners } = await import('node:events')
  const source = new AbortController()
  const key = createKey('k')
  const ran = []
  const { child, signal, value, nested, done } = (() => {
    const [ctx] = fromSignal(source.signal)
    afterFunc(ctx, () => ran.push('after-func'))
    const [nestedCtx] = fromSignal(new AbortController().signal, withCancel(ctx)[0])
    return {
      child: withCancel(ctx)[0],
      signal: withTimeout(ctx, 3600_000)[0].signal,
      value: withValue(ctx, key, 'v'),
      nested: nestedCtx,
      done: withCancel(ctx)[0].done(),
    }
  })()
  await settle()
  assert.equal(getEventListeners(source.signal, 'abort').length, 1, 'still listening: the derived context is observable')
  source.abort('stop')
  for (const ctx of [child, value, nested]) assert.equal(cause(ctx), 'stop')
  assert.equal(signal.reason.cause, 'stop')
  await waitFor(done, 'done() of a dropped descendant')
  await waitFor(new Promise((resolve) => setImmediate(resolve)))
  assert.deepEqual(ran, ['after-func'])
})

test('fromSignal both ways: a context signal feeds another context, and AbortSignal.timeout one', async () => {
  const [a, cancelA] = withCancelCause(background())
  const [b] = fromSignal(a.signal)
  cancelA('stop')
  assert.equal(cause(b), a.err(), "b's cause is a's error, which carries a's cause")
  assert.equal(cause(b).cause, 'stop')
  const [t] = fromSignal(AbortSignal.timeout(10))
  await waitFor(aborted(t.signal), 'AbortSignal.timeout')
  assert.equal(cause(t).name, 'TimeoutError')
  assert.ok(t.err() instanceof Canceled, 'a signal aborting is a cancellation, whatever its reason')
})

test('a listener that throws does not stop the other aborts, and is reported as uncaught', () => {
  const url = new URL('../index.js', import.meta.url).pathname
  const run = spawnSync(
    process.execPath,
    [
      '-e',
      `const p = require(${JSON.stringify(url)})
       process.on('uncaughtException', (e) => console.log('uncaught: ' + e.message))
       const [root, cancel] = p.withCancel(p.background())
       const [a] = p.withCancel(root)
       const [b] = p.withCancel(root)
       a.signal.addEventListener('abort', () => { throw new Error('listener bug') })
       b.signal.addEventListener('abort', () => console.log('b aborted'))
       cancel()
       console.log('cancel returned')`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  )
  assert.equal(run.status, 0, run.stderr)
  assert.deepEqual(run.stdout.trim().split('\n'), ['b aborted', 'cancel returned', 'uncaught: listener bug'])
})

test('a listener that cancels more contexts is handled re-entrantly', () => {
  const [a, cancelA] = withCancel(background())
  const [b, cancelB] = withCancel(background())
  const [bChild] = withCancel(b)
  const order = []
  a.signal.addEventListener('abort', () => {
    order.push('a')
    cancelB()
    order.push('after cancelB')
  })
  bChild.signal.addEventListener('abort', () => order.push('b child'))
  b.signal.addEventListener('abort', () => order.push('b'))
  cancelA()
  assert.deepEqual(order, ['a', 'b', 'b child', 'after cancelB'])
})

test('nothing pending keeps the process alive: not a deadline, a signal, an after-func, fromSignal or done()', () => {
  const url = new URL('../index.js', import.meta.url).pathname
  const script = (body) =>
    spawnSync(process.execPath, ['-e', `const p = require(${JSON.stringify(url)}); ${body}`], {
      encoding: 'utf8',
      timeout: 60_000,
    })
  const started = Date.now()
  const idle = script(
    `const [ctx] = p.withTimeout(p.background(), 3600000)
     ctx.signal.addEventListener('abort', () => console.log('aborted'))
     p.afterFunc(ctx, () => console.log('after-func'))
     p.fromSignal(new AbortController().signal, ctx)
     ctx.done().then(() => console.log('done'))`,
  )
  assert.equal(idle.status, 0, idle.stderr)
  assert.equal(idle.stdout, '', 'it exits without waiting for the hour')
  assert.ok(Date.now() - started < 30_000)
  // As with AbortSignal.timeout: whoever waits keeps the process alive
  // (a server, a timer); the deadline then reaches every waiter.
  const waiting = script(
    `const [ctx] = p.withTimeout(p.background(), 50)
     const alive = setTimeout(() => {}, 60000)
     ctx.done().then(() => { console.log(ctx.err().name); clearTimeout(alive) })`,
  )
  assert.equal(waiting.status, 0, waiting.stderr)
  assert.equal(waiting.stdout.trim(), 'TimeoutError')
})

test('worker threads: each has its own event loop, and deadlines reach each', async () => {
  const url = new URL('../index.js', import.meta.url).pathname
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads')
     const p = require(${JSON.stringify(url)})
     const [ctx] = p.withTimeout(p.background(), 20, 'worker deadline')
     const alive = setInterval(() => {}, 1000) // a pending deadline keeps no thread alive
     ctx.done().then(() => {
       parentPort.postMessage(ctx.signal.reason.message)
       clearInterval(alive)
     })`,
    { eval: true },
  )
  const message = await waitFor(
    new Promise((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    }),
    "the worker's deadline",
  )
  assert.equal(message, 'context deadline exceeded: worker deadline')
  await worker.terminate()
  // The main thread's events still arrive after a worker has gone.
  const [ctx] = withTimeout(background(), 10)
  await waitFor(ctx.done())
  assert.ok(ctx.err() instanceof DeadlineExceeded)
})

test('withDeadline takes a Date or epoch milliseconds', async () => {
  const [a] = withDeadline(background(), new Date(Date.now() + 10))
  const [b] = withDeadline(background(), Date.now() + 10)
  await waitFor(Promise.all([a.done(), b.done()]))
  assert.ok(a.err() instanceof DeadlineExceeded && b.err() instanceof DeadlineExceeded)
})

test('afterFunc runs on the JS thread after a cancel from another thread', async () => {
  const [ctx] = withCancel(background())
  const ran = new Promise((resolve) => afterFunc(ctx, () => resolve(ctx.isDone())))
  cancelFromThread(ctx)
  assert.equal(await waitFor(ran, 'the after-func'), true)
})
