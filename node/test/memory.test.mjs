// Dropped contexts leave nothing behind: neither a parent nor the native
// core keeps a child alive (the leak AbortSignal.any is known for), and
// values and causes are released once no context holds them. Run with
// --expose-gc and POLYCTX_TEST_HOOKS=1.
//
// What is measured: the native handles, watches and armed deadlines, and
// this thread's held values and watchers, counted exactly (the test hooks);
// and the JS heap per child, which must be flat. RSS is allocator noise at
// these counts (tens of bytes per child either way), so it is only a
// generous check where a leak would be large. The control cases show each
// measurement does see a leak when children are kept.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import polyctx, {
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  withValue,
  createKey,
  afterFunc,
  DeadlineExceeded,
} from 'polyctx'
import { retainedPerChild, settle } from '../bench/memory.mjs'
import { waitFor } from './fixtures/wait.mjs'

const hooks = polyctx[Symbol.for('polyctx.test')]
const counts = () => hooks.liveCounts()

/** Every count is back to (or below) where it was: nothing is left live. */
function nothingLeft(grown, what = 'nothing is left live') {
  assert.ok(Object.values(grown).every((n) => n <= 0), `${what}: ${JSON.stringify(grown)}`)
}

const COUNT = 200_000
// Bytes of heap per dropped child that count as "back to baseline" (a
// kept child costs about 150).
const HEAP_SLACK = 8
// A dropped child whose signal was read must not keep a third of what a
// kept one costs (about 1 KB): far above the noise, far below a leak.
const SIGNAL_RSS_SLACK = 320

async function measure(derive) {
  // One warm-up round takes allocator and heap high-water marks out of the
  // measurement; the measured round must then come back to where it started.
  await retainedPerChild({ count: COUNT, derive, counts })
  return retainedPerChild({ count: COUNT, derive, counts })
}

test('200,000 dropped children of a long-lived parent are all freed', { timeout: 120_000 }, async () => {
  const [parent, cancel] = withCancel(background())
  const plain = await measure(() => withCancel(parent)[0])
  nothingLeft(plain.grown)
  assert.ok(plain.heap < HEAP_SLACK, `heap kept per child: ${plain.heap} B`)
  const timed = await measure(() => withTimeout(parent, 3600_000)[0])
  nothingLeft(timed.grown, 'no deadline stays armed')
  assert.ok(timed.heap < HEAP_SLACK, `heap kept per child: ${timed.heap} B`)
  assert.equal(parent.isDone(), false)
  cancel()
})

test('200,000 dropped children whose signal was read are all freed', { timeout: 120_000 }, async () => {
  const [parent, cancel] = withCancel(background())
  const withSignal = await measure(() => {
    const [child] = withCancel(parent)
    void child.signal
    return child
  })
  nothingLeft(withSignal.grown, 'nothing is left live or watched')
  assert.ok(withSignal.heap < HEAP_SLACK, `heap kept per child: ${withSignal.heap} B`)
  assert.ok(withSignal.rss < SIGNAL_RSS_SLACK, `RSS kept per child: ${withSignal.rss} B`)
  cancel()
})

test('the measurement sees a leak: kept children show up', { timeout: 120_000 }, async () => {
  const [parent] = withCancel(background())
  const count = 50_000
  const kept = await retainedPerChild({
    count,
    retain: true,
    counts,
    derive: () => {
      const [child] = withCancel(parent)
      child.signal
      return child
    },
  })
  assert.deepEqual(kept.grown, { contexts: count, keys: 0, watches: count, deadlines: 0, held: 0, watchers: count })
  assert.ok(kept.heap > 10 * HEAP_SLACK, `a kept child costs ${kept.heap} B of heap`)
  assert.ok(kept.rss > 2 * SIGNAL_RSS_SLACK, `a kept child costs ${kept.rss} B of RSS`)
})

test('values and causes are released when no context holds them', async () => {
  const collected = new Set()
  const registry = new FinalizationRegistry((name) => collected.add(name))
  const key = createKey('payload')
  const [parent, cancelParent] = withCancel(background())
  ;(() => {
    const value = { big: new Array(1000).fill(1) }
    registry.register(value, 'value')
    const timeoutCause = new Error('budget spent')
    registry.register(timeoutCause, 'timeout cause')
    const cancelCauseValue = new Error('client went away')
    registry.register(cancelCauseValue, 'cancel cause')
    const ctx = withValue(parent, key, value)
    const [child] = withTimeout(ctx, 3600_000, timeoutCause)
    const [other, cancel] = withCancelCause(child)
    cancel(cancelCauseValue)
    assert.equal(other.value(key), value)
  })()
  await settle()
  await settle()
  assert.deepEqual([...collected].sort(), ['cancel cause', 'timeout cause', 'value'])
  cancelParent()
})

test('a signal still in use aborts after its context wrapper is collected', async () => {
  const [parent, cancel] = withCancelCause(background())
  const signal = (() => withCancel(parent)[0].signal)()
  await settle()
  const aborted = new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  cancel(new Error('shutdown'))
  await aborted
  assert.equal(signal.reason.cause.message, 'shutdown')
})

test('a dropped context whose signal has listeners stays watched until it is done, then is freed', async () => {
  const count = 100_000
  const round = async () => {
    const [parent, cancel] = withCancel(background())
    let fired = 0
    await settle()
    const baseline = process.memoryUsage().heapUsed
    for (let i = 0; i < count; i++) {
      const [child] = withCancel(parent)
      child.signal.addEventListener('abort', () => fired++)
    }
    await settle()
    const waiting = (process.memoryUsage().heapUsed - baseline) / count
    cancel()
    assert.equal(fired, count, 'every listener ran')
    await settle()
    return [waiting, (process.memoryUsage().heapUsed - baseline) / count]
  }
  await round() // warm-up, as in measure()
  const [waiting, after] = await round()
  assert.ok(waiting > 10 * HEAP_SLACK, `someone waits on each, so each is kept (${waiting} B)`)
  assert.ok(after < HEAP_SLACK, `then all is freed (${after} B kept per child)`)

  const waitingOnDone = (async () => {
    const [timed] = withTimeout(background(), 50)
    await timed.done() // the wrapper is collectable while this waits
    return timed.err()
  })()
  await settle()
  assert.ok((await waitFor(waitingOnDone, 'done() of a dropped context')) instanceof DeadlineExceeded)
})

test('a pending afterFunc keeps its context reachable from the parent, as in Go', async () => {
  const [parent, cancel] = withCancel(background())
  const ran = new Promise((resolve) => {
    afterFunc(withCancel(parent)[0], resolve)
  })
  await settle()
  cancel()
  await ran
})
