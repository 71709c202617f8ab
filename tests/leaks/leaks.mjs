// Leak check for Node: ITERATIONS rounds of everything a Node program does
// with contexts, then proof that nothing stayed behind.
//
//   POLYCTX_TEST_HOOKS=1 node --expose-gc leaks.mjs [ITERATIONS] [--expect-leak]
//
// Each round derives (cancel with a cause, deadline, value), reads the signal
// of every other context, registers an after-func, hands the context to C and
// takes it back (toC/fromC, C's calls through koffi; on the main thread),
// cancels with a cause
// and drops everything. Every 10,000 rounds (and at least twice) a worker
// thread does rounds of its own and exits with contexts, deadlines, signals
// and after-funcs still pending: worker churn. At the end, once the
// collector has run:
//
// - the native side's counts (context and key handles, watches, armed
//   deadlines; `polyctx.stats()`) and the JS values and causes it holds (the
//   test hooks) are back where they were before the first round, exactly;
// - the JS heap and glibc's bytes in use (the core and the addon) have not
//   grown by more than 1 MiB plus one byte per round since round 100,000,
//   once V8 has warmed up (a short run: 4 MiB from its halfway point).
//
// `--expect-leak` keeps one context in 100 alive: the run must then fail,
// which shows that it can.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import {
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  withValue,
  createKey,
  afterFunc,
  toC,
  fromC,
  cLibrary,
  stats,
} from 'polyctx'

const hooks = (await import('polyctx')).default?.[Symbol.for('polyctx.test')]
// koffi (one of polyctx's pinned dev dependencies) reaches C, on the main
// thread only: koffi itself keeps about 23 KB of native memory per worker
// that loads it (measured with no polyctx in the worker), which would hide
// what this check looks for.
const koffi = isMainThread ? createRequire(realpathSync(fileURLToPath(import.meta.resolve('polyctx'))))('koffi') : null
const cRelease = koffi?.load(cLibrary()).func('void ctx_release(uint64_t ctx)')
const KEY = createKey('leak-check')

function oneRound(parent, i, keep) {
  const value = { request: i }
  const why = new Error('client went away')
  const [ctx, cancel] = withCancelCause(parent)
  const [timed, cancelTimed] = withTimeout(ctx, 3600_000)
  const valued = withValue(timed, KEY, value)
  if (i % 2 === 0) valued.signal.addEventListener('abort', () => {}, { once: true })
  afterFunc(valued, () => {})
  if (cRelease !== undefined) {
    const ptr = toC(valued) // JS -> C
    const back = fromC(ptr) // C -> JS
    cRelease(ptr)
    assert.equal(back.value(KEY), value)
  }
  cancel(why)
  cancelTimed()
  if (keep !== null && i % 100 === 0) keep.push([valued, cancel])
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

if (!isMainThread) {
  // A worker: rounds, then an exit with work still pending.
  const [parent] = withCancel(background())
  for (let i = 0; i < workerData.rounds; i++) oneRound(parent, i, null)
  const [pending] = withTimeout(parent, 3600_000)
  pending.signal.addEventListener('abort', () => {})
  afterFunc(pending, () => {})
  parentPort.postMessage('done')
} else {
  await main()
}

async function settle(done) {
  let last = Infinity
  for (let i = 0; i < 200; i++) {
    globalThis.gc()
    await turn()
    const used = process.memoryUsage().heapUsed
    if (i >= 4 && used >= last - 1024 && done()) return true
    last = used
  }
  return false
}

function nativeInUse() {
  const libc = koffi.load('libc.so.6')
  nativeInUse.f ??= libc.func(
    'mallinfo2',
    koffi.struct('mallinfo2_t', Object.fromEntries(
      ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'].map((k) => [k, 'size_t']),
    )),
    [],
  )
  const m = nativeInUse.f()
  return Number(m.uordblks) + Number(m.hblkhd)
}

function counts() {
  const s = stats()
  const h = hooks?.liveCounts()
  return { contexts: s.contexts, keys: s.keys, watches: s.watches, deadlines: s.deadlines, held: h?.held ?? 0, watchers: h?.watchers ?? 0 }
}

async function main() {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
  const iterations = Number(args[0] ?? 1_000_000)
  const keep = process.argv.includes('--expect-leak') ? [] : null
  if (hooks === undefined) throw new Error('run with POLYCTX_TEST_HOOKS=1: the held-value counts come from the test hooks')
  const started = performance.now()
  const [parent, end] = withCancel(background()) // a server-lifetime context
  await settle(() => true)
  const before = counts()
  const churns = Math.max(2, Math.floor(iterations / 10_000))
  const every = Math.floor(iterations / churns)
  // V8 warms up for about the first 100,000 rounds (code, feedback, the
  // malloc'd bookkeeping of a heap that grows), a few MB of native memory
  // that then stays flat; memory is compared from there.
  const checkpoint = Math.min(100_000, Math.floor(iterations / 2))
  let base = null
  let workers = 0
  for (let i = 0; i < iterations; i++) {
    oneRound(parent, i, keep)
    if (i % 1000 === 999) await turn() // finalizers run, as between requests
    if (i % every === every - 1 && workers < churns) {
      workers++
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { rounds: 200 } })
      await new Promise((resolve, reject) => {
        w.once('error', reject)
        w.once('exit', resolve)
      })
    }
    if (i === checkpoint) {
      await settle(() => true)
      base = { heap: process.memoryUsage().heapUsed, native: nativeInUse() }
    }
  }
  end()
  const same = () => Object.entries(counts()).every(([k, v]) => v <= before[k])
  await settle(same)
  const after = counts()
  const grownHeap = process.memoryUsage().heapUsed - base.heap
  const grownNative = nativeInUse() - base.native
  const rounds = iterations - checkpoint
  // A short run ends inside the warm-up: its counts above are exact, its
  // memory figures only a coarse check.
  // Past the warm-up, native memory still moves by 1-3 MB that does not
  // grow with the rounds (2.2 MB after 900,000 and after 2,900,000 alike:
  // allocator arenas and V8's own, worker churn included); a leak of a byte
  // a round shows on top of that. A context is hundreds of bytes.
  const allowed = (iterations >= 500_000 ? 3 : 4) * 1024 * 1024 + rounds
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  console.log(
    `node: ${iterations.toLocaleString('en')} rounds and ${workers} worker churns in ${seconds} s; ` +
      `live before/after: ${JSON.stringify(before)} / ${JSON.stringify(after)}; grown since round ` +
      `${checkpoint.toLocaleString('en')}: JS heap ${grownHeap} B (${(grownHeap / rounds).toFixed(3)} B/round), ` +
      `native ${grownNative} B (${(grownNative / rounds).toFixed(3)} B/round)`,
  )
  const failures = []
  for (const [k, v] of Object.entries(after)) {
    if (v > before[k]) failures.push(`${v - before[k]} ${k} left`)
  }
  if (grownHeap > allowed) failures.push(`the JS heap grew by ${grownHeap} B (allowed ${allowed})`)
  if (grownNative > allowed) failures.push(`native memory grew by ${grownNative} B (allowed ${allowed})`)
  for (const f of failures) console.log(`node: LEAK: ${f}`)
  if (keep !== null) {
    keep.length = 0
    if (failures.length === 0) {
      console.log('node: --expect-leak: the leak kept on purpose went unseen')
      process.exit(1)
    }
    console.log('node: --expect-leak: seen, as it must be')
    process.exit(0)
  }
  process.exit(failures.length === 0 ? 0 : 1)
}
