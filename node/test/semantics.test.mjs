// Go's context semantics through the JS API: each test names the Go test
// (in src/context) or the rule it follows. Waits are on signals and
// promises, never on sleeps; deadlines that must fire are short, those that
// must not are an hour away. A wait for a deadline goes through waitFor:
// pending deadlines and done() promises do not keep the process alive.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  background,
  todo,
  withCancel,
  withCancelCause,
  withTimeout,
  withDeadline,
  withValue,
  withoutCancel,
  createKey,
  afterFunc,
  cause,
  Context,
  ContextError,
  Canceled,
  DeadlineExceeded,
} from 'polyctx'
import { waitFor } from './fixtures/wait.mjs'

const HOUR = 3600_000

test('background and todo are roots: never done, no deadline, no values (TestBackground, TestTODO)', () => {
  for (const [ctx, name] of [
    [background(), 'context.Background'],
    [todo(), 'context.TODO'],
  ]) {
    assert.ok(ctx instanceof Context)
    assert.equal(ctx.isDone(), false)
    assert.equal(ctx.err(), null)
    assert.equal(cause(ctx), null)
    assert.equal(ctx.deadline(), null)
    assert.equal(ctx.value(createKey('k')), undefined)
    assert.equal(String(ctx), name)
  }
  assert.equal(background(), background())
  assert.notEqual(background(), todo())
})

test('cancel reaches every descendant, never the parent or a sibling (TestWithCancel)', () => {
  const [parent, cancelParent] = withCancel(background())
  const [a, cancelA] = withCancel(parent)
  const [b] = withCancel(parent)
  const [a1] = withCancel(a)
  const a2 = withValue(a, createKey('k'), 'v')
  const [a3] = withCancel(a2)
  cancelA()
  for (const ctx of [a, a1, a2, a3]) {
    assert.equal(ctx.isDone(), true)
    assert.ok(ctx.err() instanceof Canceled)
  }
  assert.equal(parent.err(), null)
  assert.equal(b.err(), null)
  cancelParent()
  assert.ok(b.err() instanceof Canceled)
  assert.equal(String(a1), 'context.Background.WithCancel.WithCancel.WithCancel')
})

test('cancel is idempotent and the first cancellation wins (TestCancelRemoves, first cause wins)', () => {
  const [ctx, cancel] = withCancelCause(background())
  cancel(new Error('first'))
  const err = ctx.err()
  cancel(new Error('second'))
  cancel()
  assert.equal(ctx.err(), err)
  assert.equal(cause(ctx).message, 'first')
  assert.equal(err.message, 'context canceled: first')
})

test('a child of a done parent is done at creation, with the parent error and cause (propagateCancel)', () => {
  const [parent, cancel] = withCancelCause(background())
  cancel('gone')
  const [child] = withCancel(parent)
  const [timed] = withTimeout(parent, HOUR)
  for (const ctx of [child, timed]) {
    assert.ok(ctx.err() instanceof Canceled)
    assert.equal(cause(ctx), 'gone')
  }
})

test('causes: nil gives Canceled, parents pass theirs down, children never up (TestCause)', () => {
  const [nilCtx, cancelNil] = withCancelCause(background())
  cancelNil()
  assert.ok(cause(nilCtx) instanceof Canceled)
  assert.equal(cause(nilCtx), nilCtx.err())
  assert.equal(nilCtx.err().cause, undefined)

  const [parent, cancelParent] = withCancelCause(background())
  const [child, cancelChild] = withCancelCause(parent)
  const [other, cancelOther] = withCancelCause(parent)
  cancelChild(new Error('child cause'))
  assert.equal(cause(parent), null)
  const why = { reason: 'parent cause' }
  cancelParent(why)
  assert.equal(cause(parent), why)
  assert.equal(cause(other), why, 'the parent cause reaches a live child')
  assert.equal(cause(child).message, 'child cause', 'a child already done keeps its own')
  cancelOther(new Error('too late'))
  assert.equal(cause(other), why)
  assert.equal(other.err().cause, why)
  assert.equal(other.err().message, 'context canceled: [object Object]')
})

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

test('deadlines: past ones are done at once, children never outlive parents (TestDeadline)', () => {
  const [past] = withDeadline(background(), Date.now() - 1000, 'late')
  assert.ok(past.err() instanceof DeadlineExceeded)
  assert.equal(cause(past), 'late')
  const [zero] = withTimeout(background(), 0)
  assert.ok(zero.err() instanceof DeadlineExceeded)

  const at = new Date(Date.now() + HOUR)
  const [parent] = withDeadline(background(), at)
  assert.equal(parent.deadline().getTime(), at.getTime())
  const [later] = withDeadline(parent, at.getTime() + HOUR)
  const [sooner] = withTimeout(parent, HOUR / 2)
  const [derived] = withCancel(parent)
  assert.equal(later.deadline().getTime(), at.getTime(), 'a later deadline follows the parent')
  assert.ok(sooner.deadline() < at)
  assert.equal(derived.deadline().getTime(), at.getTime())
  assert.equal(withValue(parent, createKey('k'), 1).deadline().getTime(), at.getTime())
  assert.ok(parent.deadline() !== parent.deadline(), 'a fresh Date each time')
  assert.match(String(sooner), /^context\.Background\.WithDeadline\(\[.*\]\)\.WithDeadline\(\[.*\]\)$/)
})

test('a child deadline earlier than its parent fires alone', async () => {
  const [parent] = withTimeout(background(), HOUR)
  const [child] = withTimeout(parent, 10)
  await waitFor(child.done())
  assert.ok(child.err() instanceof DeadlineExceeded)
  assert.equal(parent.err(), null)
})

test('values: found through layers, shadowed, keys unique by identity (TestValues)', () => {
  const k1 = createKey('k')
  const k2 = createKey('k')
  const obj = { user: 'ada' }
  const c1 = withValue(background(), k1, obj)
  const [c2] = withCancel(c1)
  const c3 = withValue(c2, k2, 'second')
  const c4 = withValue(c3, k1, 'shadow')
  assert.equal(c1.value(k1), obj)
  assert.equal(c1.value(k2), undefined, 'same name, other key')
  assert.equal(c3.value(k1), obj)
  assert.equal(c3.value(k2), 'second')
  assert.equal(c4.value(k1), 'shadow')
  assert.equal(c3.value(k1), obj, 'shadowing does not reach up')
  assert.equal(background().value(k1), undefined)
  assert.equal(k1.name, 'k')
  assert.equal(String(k1), 'Key(k)')
  assert.throws(() => {
    k1.name = 'x'
  }, TypeError)
})

test('withoutCancel keeps values, drops cancellation and deadline (TestWithoutCancel)', async () => {
  const key = createKey('k')
  const [parent, cancel] = withTimeout(withValue(background(), key, 'v'), HOUR)
  const detached = withoutCancel(parent)
  cancel()
  assert.equal(detached.isDone(), false)
  assert.equal(detached.err(), null)
  assert.equal(cause(detached), null)
  assert.equal(detached.deadline(), null)
  assert.equal(detached.value(key), 'v')
  const [child, cancelChild] = withTimeout(detached, 10)
  await waitFor(child.done())
  assert.ok(child.err() instanceof DeadlineExceeded)
  cancelChild()
  assert.equal(detached.isDone(), false)
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

test('afterFunc stopped first never runs; stop() reports it once (TestAfterFuncNotCalledAfterStop)', async () => {
  const [ctx, cancel] = withCancel(background())
  let runs = 0
  const stop = afterFunc(ctx, () => runs++)
  assert.equal(stop(), true)
  assert.equal(stop(), false)
  cancel()
  await ctx.done()
  await new Promise((r) => setImmediate(r))
  assert.equal(runs, 0)
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

test('afterFunc after a deadline, on a descendant, and several at once (TestAfterFuncCalledAfterDeadline)', async () => {
  const [parent] = withTimeout(background(), 20)
  const [child] = withCancel(parent)
  const order = []
  const all = Promise.all(
    [1, 2, 3].map((n) => new Promise((resolve) => afterFunc(child, () => resolve(order.push(n))))),
  )
  await waitFor(all, 'the after-funcs')
  assert.deepEqual(order.sort(), [1, 2, 3])
  assert.ok(child.err() instanceof DeadlineExceeded)
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
