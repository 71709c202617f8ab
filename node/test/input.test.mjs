// Bad input throws TypeError or RangeError (with Node's error codes) and a
// message naming the function and the argument; never a crash or a hang.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as polyctx from 'polyctx'
import {
  DeadlineExceeded,
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  withDeadline,
  withValue,
  withoutCancel,
  createKey,
  afterFunc,
  cause,
  fromSignal,
} from 'polyctx'

const hooks = polyctx.default[Symbol.for('polyctx.test')]

const notContexts = [undefined, null, 1, 'ctx', {}, [], () => {}, new AbortController().signal, Object.create(polyctx.Context.prototype)]

function throwsType(fn, pattern) {
  assert.throws(fn, (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && pattern.test(e.message))
}

function throwsRange(fn, pattern) {
  assert.throws(fn, (e) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE' && pattern.test(e.message))
}

test('a parent must be a Context', () => {
  for (const bad of notContexts) {
    throwsType(() => withCancel(bad), /withCancel: parent must be a Context/)
    throwsType(() => withCancelCause(bad), /withCancelCause: parent must be a Context/)
    throwsType(() => withTimeout(bad, 10), /withTimeout: parent must be a Context/)
    throwsType(() => withDeadline(bad, Date.now()), /withDeadline: parent must be a Context/)
    throwsType(() => withValue(bad, createKey('k'), 1), /withValue: parent must be a Context/)
    throwsType(() => withoutCancel(bad), /withoutCancel: parent must be a Context/)
    throwsType(() => afterFunc(bad, () => {}), /afterFunc: parent must be a Context/)
    throwsType(() => cause(bad), /cause: parent must be a Context/)
    if (bad !== undefined) {
      throwsType(() => fromSignal(new AbortController().signal, bad), /fromSignal: parent must be a Context/)
    }
  }
  throwsType(() => withCancel('x'), /got string "x"/)
  throwsType(() => withCancel({}), /got an instance of Object/)
})

test('timeouts follow the core\'s one rule for durations: negative is already expired, NaN and beyond ~292 years throw', () => {
  const ctx = background()
  throwsType(() => withTimeout(ctx, 'x'), /withTimeout: ms must be a number of milliseconds, got string "x"/)
  throwsType(() => withTimeout(ctx), /got undefined/)
  throwsType(() => withTimeout(ctx, 10n), /got bigint 10/)
  throwsType(() => withTimeout(ctx, new Number(5)), /ms must be a number/)
  throwsRange(() => withTimeout(ctx, NaN), /withTimeout: ms must be a valid duration, got NaN \(a duration cannot be NaN\)/)
  for (const huge of [Infinity, -Infinity, 1e300, -1e300, Number.MAX_VALUE, 9.3e12]) {
    const text = `got ${huge} (a duration must be finite and within about 292 years`
    throwsRange(() => withTimeout(ctx, huge), { test: (message) => message.includes(text) })
  }
  const before = hooks.liveCounts().held
  throwsRange(() => withTimeout(ctx, NaN, new Error('never held')), /got NaN/)
  assert.equal(hooks.liveCounts().held, before, 'a refused call keeps nothing')
  // As in Go, C and Python: a negative (or zero) timeout is a deadline already past.
  for (const ms of [-1, -0, 0, -0.0001, -1e12]) {
    const now = Date.now()
    const [past, cancel] = withTimeout(ctx, ms, 'late')
    assert.ok(past.err() instanceof DeadlineExceeded, `withTimeout(${ms}) is done at once`)
    assert.equal(cause(past), 'late')
    assert.ok(Math.abs(past.deadline().getTime() - (now + ms)) < 1000, `its deadline is now + ${ms}`)
    cancel()
  }
  // The largest timeouts are fine and simply never fire.
  const [far, cancel] = withTimeout(ctx, 9.2e12)
  assert.equal(far.isDone(), false)
  assert.ok(far.deadline().getTime() > Date.now() + 290 * 365 * 86_400_000)
  cancel()
  withTimeout(ctx, 0.5)[1]()
})

test('deadlines must be Dates or epoch milliseconds that are valid times within reach', () => {
  const ctx = background()
  throwsType(() => withDeadline(ctx, '2030-01-01'), /withDeadline: deadline must be a Date or epoch milliseconds/)
  throwsType(() => withDeadline(ctx), /got undefined/)
  throwsRange(() => withDeadline(ctx, new Date('nonsense')), /deadline must be a valid time, got Invalid Date/)
  throwsRange(() => withDeadline(ctx, NaN), /got NaN/)
  throwsRange(() => withDeadline(ctx, Infinity), /got Infinity/)
  // The same rule as timeouts: further ahead than about 292 years throws.
  throwsRange(() => withDeadline(ctx, 8.64e15), /withDeadline: deadline is too far ahead, got 8640000000000000 \(a duration must be finite/)
  throwsRange(() => withDeadline(ctx, Date.now() + 9.3e12), /too far ahead/)
  const [far, cancel] = withDeadline(ctx, Date.now() + 9.2e12)
  assert.equal(far.isDone(), false)
  cancel()
  // Any past is past, however long ago.
  const [past] = withDeadline(ctx, -8.64e15) // the earliest Date
  assert.ok(past.isDone())
  assert.equal(past.deadline().getTime(), -8.64e15)
})

test('deadline() is the deadline given, even one before the machine booted', () => {
  const ctx = background()
  const epoch = new Date(0)
  const [past] = withDeadline(ctx, epoch)
  assert.ok(past.err() instanceof DeadlineExceeded)
  assert.equal(past.deadline().getTime(), 0)
  const [child] = withCancel(past)
  assert.equal(child.deadline().getTime(), 0, 'children inherit it')
  assert.equal(withValue(child, createKey('k'), 1).deadline().getTime(), 0)
  const [later] = withDeadline(past, 1000)
  assert.equal(later.deadline().getTime(), 0, "a later deadline follows the parent's, as in Go")
  const [earlier] = withDeadline(past, -1000)
  assert.equal(earlier.deadline().getTime(), -1000, 'an earlier one is its own')
  const [timeout] = withTimeout(past, -1e12) // about 32 years ago, from 1970
  assert.equal(timeout.deadline().getTime(), 0, 'a later one follows the parent')
  const now = Date.now()
  const [long] = withTimeout(background(), -2e12) // before 1970
  assert.ok(Math.abs(long.deadline().getTime() - (now - 2e12)) < 1000)
  assert.equal(withoutCancel(past).deadline(), null)
})

test('keys come from createKey; names are strings', () => {
  const ctx = background()
  for (const bad of [undefined, null, 'trace-id', Symbol('k'), {}, { name: 'k' }]) {
    throwsType(() => withValue(ctx, bad, 1), /withValue: key must come from createKey\(\)/)
    throwsType(() => ctx.value(bad), /value: key must come from createKey\(\)/)
  }
  throwsType(() => createKey(), /createKey: name must be a string, got undefined/)
  throwsType(() => createKey(42), /got number 42/)
  assert.throws(() => new polyctx.Key('x'), TypeError)
})

test('afterFunc needs a function; fromSignal an AbortSignal', () => {
  for (const bad of [undefined, null, 'fn', {}, Promise.resolve()]) {
    throwsType(() => afterFunc(background(), bad), /afterFunc: fn must be a function/)
  }
  for (const bad of [undefined, null, {}, new AbortController(), { aborted: false, addEventListener() {} }]) {
    throwsType(() => fromSignal(bad), /fromSignal: signal must be an AbortSignal/)
  }
})

test('methods called on something that is not a context throw TypeError, not crash', () => {
  const { err, isDone, deadline, value, done, toString } = polyctx.Context.prototype
  const signal = Object.getOwnPropertyDescriptor(polyctx.Context.prototype, 'signal').get
  for (const method of [err, isDone, deadline, done, toString, signal]) {
    for (const bad of [undefined, {}, Object.create(polyctx.Context.prototype)]) {
      assert.throws(() => method.call(bad), TypeError)
    }
  }
  assert.throws(() => value.call({}, createKey('k')), TypeError)
})

test('cancel functions ignore arguments they do not take, and any cause value is fine', () => {
  const [ctx, cancel] = withCancel(background())
  cancel('ignored', 1, 2)
  assert.equal(cause(ctx), ctx.err())
  const [c2, cancel2] = withCancelCause(background())
  const weird = new Proxy(
    {},
    {
      get() {
        throw new Error('trap')
      },
    },
  )
  cancel2(weird)
  assert.equal(cause(c2), weird)
  assert.equal(c2.err().message, 'context canceled: (a cause that cannot be shown)')
})
