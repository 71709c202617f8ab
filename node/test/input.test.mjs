// Bad input throws TypeError or RangeError (with Node's error codes) and a
// message naming the function and the argument; never a crash or a hang.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as polyctx from 'polyctx'
import {
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

test('timeouts must be finite, non-negative numbers of milliseconds', () => {
  const ctx = background()
  throwsType(() => withTimeout(ctx, 'x'), /withTimeout: ms must be a number of milliseconds, got string "x"/)
  throwsType(() => withTimeout(ctx), /got undefined/)
  throwsType(() => withTimeout(ctx, 10n), /got bigint 10/)
  throwsType(() => withTimeout(ctx, new Number(5)), /ms must be a number/)
  throwsRange(() => withTimeout(ctx, NaN), /ms must be finite and >= 0, got NaN/)
  throwsRange(() => withTimeout(ctx, Infinity), /got Infinity/)
  throwsRange(() => withTimeout(ctx, -1), /got -1/)
  throwsRange(() => withTimeout(ctx, -Infinity), /got -Infinity/)
  // Huge but finite timeouts saturate, as Go's do.
  const [far, cancel] = withTimeout(ctx, Number.MAX_VALUE)
  assert.equal(far.isDone(), false)
  assert.ok(far.deadline() === null || far.deadline().getTime() > Date.now() + 100 * 365 * 86_400_000)
  cancel()
  withTimeout(ctx, 0.5)[1]()
})

test('deadlines must be Dates or epoch milliseconds that are valid times', () => {
  const ctx = background()
  throwsType(() => withDeadline(ctx, '2030-01-01'), /withDeadline: deadline must be a Date or epoch milliseconds/)
  throwsType(() => withDeadline(ctx), /got undefined/)
  throwsRange(() => withDeadline(ctx, new Date('nonsense')), /deadline must be a valid time, got Invalid Date/)
  throwsRange(() => withDeadline(ctx, NaN), /got NaN/)
  throwsRange(() => withDeadline(ctx, Infinity), /got Infinity/)
  const [past] = withDeadline(ctx, -8.64e15) // the earliest Date: long past
  assert.ok(past.isDone())
  const [future, cancel] = withDeadline(ctx, 8.64e15)
  assert.equal(future.isDone(), false)
  cancel()
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
