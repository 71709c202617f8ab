// polyctx's debug: live-context tracking with JS stack frames, the core's
// lost-cancel count and its reports (a process warning with a code), and
// what is pending. Run with --expose-gc.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { background, withCancel, withTimeout, withValue, createKey, afterFunc, Group, debug } from 'polyctx'
import { settle } from '../bench/memory.mjs'

const FILE = fileURLToPath(import.meta.url)

/** Tracked contexts made in this file. */
const ours = (snap = debug.snapshot()) => snap.contexts.filter((c) => c.site?.includes(FILE))

function tracked(fn) {
  return async () => {
    debug.track(true)
    try {
      await fn()
    } finally {
      debug.track(false)
    }
  }
}

test(
  'tracked contexts are listed as a tree with the stack frame that made them',
  tracked(async () => {
    const [request, cancel] = withTimeout(background(), 3_600_000)
    const traced = withValue(request, createKey('trace-id'), '4bf92f35')
    const [call, cancelCall] = withCancel(traced)
    const mine = ours()
    assert.deepEqual(
      mine.map((c) => c.kind),
      ['WithDeadline', 'WithValue', 'WithCancel'],
    )
    // The frame of this very function, with its line and column.
    assert.ok(mine.every((c) => /debug\.test\.mjs:\d+:\d+\)?$/.test(c.site)), JSON.stringify(mine))
    assert.equal(mine[1].parent, mine[0].id)
    assert.equal(mine[2].parent, mine[1].id)
    assert.equal(mine[0].parent, null)
    assert.ok(mine[0].deadlineInMs > 3_500_000 && mine[0].deadlineInMs <= 3_600_000)
    assert.ok(mine.every((c) => c.err === null && c.ageMs >= 0))
    const text = String(debug.snapshot())
    assert.match(text, /WithDeadline age .*made at .*debug\.test\.mjs:\d+/)
    assert.ok(text.indexOf('WithValue') < text.indexOf('WithCancel'))
    cancelCall()
    assert.deepEqual(
      ours().map((c) => c.err),
      [null, null, 'context canceled'],
    )
    assert.ok(!debug.snapshot().running.some((c) => c.id === mine[2].id))
    cancel()
  }),
)

test(
  'freed contexts leave the list; a group\'s context is made where the group is',
  tracked(async () => {
    let made = () => withCancel(background())
    made()[1]()
    made = null
    await settle(() => ours().length === 0)
    assert.deepEqual(ours(), [])
    const g = new Group(background()) // the site is this line, not polyctx's own code
    const [site] = ours().map((c) => c.site)
    assert.match(site, /debug\.test\.mjs:\d+:\d+/)
    await g.wait()
  }),
)

test('tracking off lists nothing new, and setSite names a context made elsewhere', async () => {
  debug.track(false)
  assert.equal(debug.isTracking(), false)
  const listed = ours().length
  const [ctx, cancel] = withCancel(background())
  cancel()
  assert.equal(ours().length, listed)
  debug.track(true)
  const [c, cancelC] = withCancel(background())
  debug.setSite(c, 'worker.c:42')
  debug.track(false)
  assert.ok(debug.snapshot().contexts.some((t) => t.site === 'worker.c:42'))
  cancelC()
  assert.throws(() => debug.setSite('ctx', 'x'), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => debug.setSite(ctx, 42), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => debug.track('yes'), { code: 'ERR_INVALID_ARG_TYPE' })
})

function forget() {
  withCancel(background()) // forgotten: nobody calls its cancel function
}

test('lost cancels are counted, and reported with their site while asked for', async () => {
  const reports = []
  debug.onLostCancel((r) => reports.push(r))
  debug.track(true)
  const before = debug.lostCancels()
  try {
    forget()
    // Canceled, past its deadline, or never cancelable: not lost.
    withCancel(background())[1]()
    withTimeout(background(), -1)
    withValue(background(), createKey('k'), 1)
    await settle(() => reports.length >= 1)
  } finally {
    debug.track(false)
    debug.onLostCancel(null)
  }
  assert.equal(reports.length, 1, JSON.stringify(reports))
  assert.equal(debug.lostCancels() - before, 1)
  assert.equal(reports[0].context, 'context.Background.WithCancel')
  assert.match(reports[0].site, /^forget \(.*debug\.test\.mjs:\d+:\d+\)$/)
  forget()
  await settle(() => debug.lostCancels() - before === 2)
  assert.equal(debug.lostCancels() - before, 2) // still counted
  assert.equal(reports.length, 1) // no longer reported
  assert.throws(() => debug.onLostCancel('log'), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('warnLostCancels emits a process warning with a code, off by default', async () => {
  const warnings = []
  const listener = (w) => warnings.push(w)
  process.on('warning', listener)
  try {
    forget()
    await settle()
    assert.equal(warnings.filter((w) => w.code === 'POLYCTX_LOST_CANCEL').length, 0)
    debug.warnLostCancels()
    forget()
    await settle(() => warnings.length !== 0)
    await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on the next tick
  } finally {
    debug.warnLostCancels(false)
    process.off('warning', listener)
  }
  const ours = warnings.filter((w) => w.code === 'POLYCTX_LOST_CANCEL')
  assert.equal(ours.length, 1)
  assert.match(ours[0].message, /context\.Background\.WithCancel .*was freed without being canceled/)
})

test('live timers and pending after-funcs', async () => {
  const timers = debug.liveTimers()
  const pending = debug.pendingAfterFuncs()
  const [ctx, cancel] = withTimeout(background(), 3_600_000)
  let ran = false
  afterFunc(ctx, () => (ran = true))
  const stop = afterFunc(ctx, () => {})
  assert.equal(debug.liveTimers(), timers + 1)
  assert.equal(debug.pendingAfterFuncs(), pending + 2)
  assert.equal(stop(), true)
  assert.equal(debug.pendingAfterFuncs(), pending + 1)
  cancel()
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(ran, true)
  assert.equal(debug.liveTimers(), timers)
  assert.equal(debug.pendingAfterFuncs(), pending)
})
