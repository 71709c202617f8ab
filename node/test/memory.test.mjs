// Dropped contexts leave nothing behind: neither a parent nor the native
// core keeps a child alive (the leak AbortSignal.any is known for), and
// values and causes are released once no context holds them. Run with
// --expose-gc. Thresholds are generous; the control case shows the
// measurement does see a leak when children are kept.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
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

const MILLION = 1_000_000
// Bytes per dropped child that count as "back to baseline": heap must be
// flat, RSS may wander by allocator noise (1M children x 32 B = 32 MB).
const HEAP_SLACK = 4
const RSS_SLACK = 32

async function measure(derive, count = MILLION) {
  // One warm-up round takes allocator and heap high-water marks out of the
  // measurement; the measured round must then come back to where it started.
  await retainedPerChild({ count, derive })
  return retainedPerChild({ count, derive })
}

test('1,000,000 dropped children of a long-lived parent are all freed', { timeout: 300_000 }, async () => {
  const [parent, cancel] = withCancel(background())
  const plain = await measure(() => withCancel(parent)[0])
  assert.ok(plain.heap < HEAP_SLACK, `heap kept per child: ${plain.heap} B`)
  assert.ok(plain.rss < RSS_SLACK, `RSS kept per child: ${plain.rss} B`)
  const timed = await measure(() => withTimeout(parent, 3600_000)[0], MILLION / 4)
  assert.ok(timed.heap < HEAP_SLACK && timed.rss < RSS_SLACK, `kept per child: ${JSON.stringify(timed)}`)
  assert.equal(parent.isDone(), false)
  cancel()
})

test('1,000,000 dropped children whose signal was read are all freed', { timeout: 300_000 }, async () => {
  const [parent, cancel] = withCancel(background())
  const withSignal = await measure(() => {
    const [child] = withCancel(parent)
    void child.signal
    return child
  })
  assert.ok(withSignal.heap < HEAP_SLACK, `heap kept per child: ${withSignal.heap} B`)
  assert.ok(withSignal.rss < RSS_SLACK, `RSS kept per child: ${withSignal.rss} B`)
  cancel()
})

test('the measurement sees a leak: kept children show up', async () => {
  const [parent] = withCancel(background())
  const kept = await retainedPerChild({
    count: 100_000,
    retain: true,
    derive: () => {
      const [child] = withCancel(parent)
      child.signal
      return child
    },
  })
  assert.ok(kept.heap > 10 * HEAP_SLACK, `a kept child costs ${kept.heap} B of heap`)
  assert.ok(kept.rss > 10 * RSS_SLACK, `a kept child costs ${kept.rss} B of RSS`)
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
