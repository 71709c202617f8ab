// What only the JS API has: errors as AbortSignal names them, causes of any
// value, asynchronous after-funcs on this thread, done() promises, `using`.
// Go's semantics themselves are tested once, against Go, by
// tests/conformance (the Node runner performs every scenario through this API). Waits are on signals and
// promises, never on sleeps; deadlines that must fire are short, those that
// must not are an hour away. A wait for a deadline goes through waitFor:
// pending deadlines and done() promises do not keep the process alive.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  afterFunc,
  cause,
  Context,
  ContextError,
  Canceled,
  DeadlineExceeded,
} from 'polyctx'
import { waitFor } from './fixtures/wait.mjs'


test('a cause can be any value, and messages carry its chain', () => {
  for (const [value, text] of [
    ['a string', 'a string'],
    [42, '42'],
    [Symbol('sym'), 'Symbol(sym)'],
    [Object.create(null), '[object Object]'],
    [new Error('outer', { cause: new Error('inner', { cause: 'root' }) }), 'outer: inner: root'],
  ]) {
    const [ctx, cancel] = withCancelCause(background())
    cancel(value)
    assert.equal(cause(ctx), value)
    assert.equal(ctx.err().message, `context canceled: ${text}`)
    assert.equal(ctx.err().cause, value)
  }
  const loop = new Error('loop')
  loop.cause = loop
  const [ctx, cancel] = withCancelCause(background())
  cancel(loop)
  assert.equal(ctx.err().message, 'context canceled: loop')
})

test('errors: Canceled and DeadlineExceeded are ContextErrors named for AbortSignal code', () => {
  const c = new Canceled()
  const d = new DeadlineExceeded({ cause: 'slow' })
  assert.ok(c instanceof ContextError && c instanceof Error)
  assert.ok(d instanceof ContextError && !(d instanceof Canceled))
  assert.equal(c.name, 'AbortError')
  assert.equal(d.name, 'TimeoutError')
  assert.equal(c.message, 'context canceled')
  assert.equal(d.message, 'context deadline exceeded: slow')
  assert.equal(d.cause, 'slow')
  assert.equal(c.timeout, false)
  assert.equal(d.timeout, true)
  assert.equal(String(d), 'TimeoutError: context deadline exceeded: slow')
  assert.ok(!('cause' in c))
})

test('each context has its own error object, also when one cancellation reaches many', async () => {
  const [parent, cancel] = withCancelCause(background())
  const [a] = withCancel(parent)
  const [b] = withCancel(parent)
  void a.signal
  void b.signal
  const why = new Error('shutdown')
  cancel(why)
  assert.notEqual(a.err(), b.err())
  assert.notEqual(a.signal.reason, b.signal.reason)
  assert.equal(a.signal.reason, a.err(), "a context's signal reason is its err()")
  a.err().decorated = true
  a.err().stack = 'rewritten, as fetch does'
  assert.equal(b.err().decorated, undefined)
  assert.notEqual(b.err().stack, 'rewritten, as fetch does')
  assert.equal(b.err().cause, why, 'the cause itself is shared: it is the value given')
  // The same through the event loop, from the timer thread.
  const [timed] = withTimeout(background(), 10)
  const kids = [withCancel(timed)[0], withCancel(timed)[0]]
  await waitFor(Promise.all(kids.map((k) => k.done())))
  assert.notEqual(kids[0].signal.reason, kids[1].signal.reason)
})

test('a cause that says what the error says is not said twice', () => {
  const [ctx, cancel] = withCancelCause(background())
  const given = new Canceled()
  cancel(given)
  assert.equal(ctx.err().message, 'context canceled')
  assert.equal(cause(ctx), given)
  const [other, cancelOther] = withCancelCause(background())
  cancelOther(new Canceled({ cause: 'client went away' }))
  assert.equal(other.err().message, 'context canceled: client went away')
  assert.equal(new DeadlineExceeded({ cause: new DeadlineExceeded() }).message, 'context deadline exceeded')
  assert.equal(new Canceled({ cause: new DeadlineExceeded() }).message, 'context canceled: context deadline exceeded')
  assert.equal(new Canceled({ cause: 'context canceled by the user' }).message, 'context canceled: context canceled by the user')
})

test('a timeout fires with DeadlineExceeded and its cause; its cancel gives Canceled (TestWithTimeout)', async () => {
  const [fires] = withTimeout(background(), 20, new Error('too slow'))
  const [canceled, cancel] = withTimeout(background(), 20, new Error('too slow'))
  cancel()
  await waitFor(fires.done())
  assert.ok(fires.err() instanceof DeadlineExceeded)
  assert.equal(cause(fires).message, 'too slow')
  assert.equal(fires.err().message, 'context deadline exceeded: too slow')
  assert.ok(canceled.err() instanceof Canceled)
  assert.ok(cause(canceled) instanceof Canceled, 'the timeout cause is only for the timeout')

  const [plain] = withTimeout(background(), 10)
  await waitFor(plain.done())
  assert.ok(cause(plain) instanceof DeadlineExceeded)
  assert.equal(plain.err().cause, undefined)
})

test('afterFunc runs once, asynchronously, on this thread, after cancel (TestAfterFuncCalledAfterCancel)', async () => {
  const [ctx, cancel] = withCancel(background())
  let runs = 0
  const ran = new Promise((resolve) => {
    const stop = afterFunc(ctx, () => {
      runs++
      resolve(stop)
    })
  })
  cancel()
  assert.equal(runs, 0, 'not inside cancel()')
  const stop = await ran
  assert.equal(runs, 1)
  assert.equal(stop(), false, 'already started')
  cancel()
  await Promise.resolve()
  assert.equal(runs, 1)
})

test('afterFunc on a done context starts at once, still asynchronously; on background it never runs', async () => {
  const [done, cancel] = withCancel(background())
  cancel()
  let ran = false
  const finished = new Promise((resolve) =>
    afterFunc(done, () => {
      ran = true
      resolve()
    }),
  )
  assert.equal(ran, false)
  await finished
  const stop = afterFunc(background(), () => assert.fail('background is never done'))
  assert.equal(stop(), true, "Go's stop reports that it kept f from running")
})

test('done() resolves once done, is the same promise each time, and never rejects', async () => {
  const [ctx, cancel] = withCancel(background())
  const done = ctx.done()
  assert.equal(ctx.done(), done)
  let settled = false
  done.then(() => (settled = true))
  await Promise.resolve()
  assert.equal(settled, false)
  cancel()
  assert.equal(await done, undefined)
  const [already, cancelAlready] = withCancel(background())
  cancelAlready()
  await already.done()
})

test('Symbol.dispose cancels: `using` is Go\'s defer cancel()', () => {
  const [ctx, cancel] = withCancel(background())
  const [causeCtx, cancelCause] = withCancelCause(background())
  cancel[Symbol.dispose]()
  cancelCause[Symbol.dispose]()
  assert.ok(ctx.err() instanceof Canceled)
  assert.ok(cause(causeCtx) instanceof Canceled)
  assert.equal(typeof Symbol.dispose, 'symbol')
})

test('contexts are only made by the library', () => {
  assert.throws(() => new Context(), TypeError)
  assert.throws(() => Reflect.construct(Context, [Symbol('polyctx.create'), 1]), TypeError)
})
