// polyctx beside the platform's AbortController, AbortSignal.any and
// AbortSignal.timeout, in one run: `make bench-node` (node --expose-gc).
// Time cases are interleaved, each repeated ROUNDS times; the table shows
// medians. Memory cases run once each, after the time cases.
import { background, withCancel, withTimeout } from 'polyctx'
import { livePerChild, retainedPerChild } from './memory.mjs'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const N = Number(process.env.BENCH_N ?? 100_000)
const FANOUT = 10_000
const HOUR = 3600_000

const [root] = withCancel(background())
const parentController = new AbortController()
const reason = new Error('done')

/** ns per operation for `n` runs of `op`. */
function perOp(n, op) {
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) op()
  return Number(process.hrtime.bigint() - t) / n
}

const timeCases = {
  'derive+cancel': {
    'polyctx withCancel': () =>
      perOp(N, () => {
        const [, cancel] = withCancel(root)
        cancel()
      }),
    'polyctx withTimeout(1h)': () =>
      perOp(N, () => {
        const [, cancel] = withTimeout(root, HOUR)
        cancel()
      }),
    'new AbortController() + abort()': () => perOp(N, () => new AbortController().abort()),
    'new AbortController() + abort(reason)': () => perOp(N, () => new AbortController().abort(reason)),
    'AbortSignal.any([parent]) (no cancel)': () => perOp(N, () => AbortSignal.any([parentController.signal])),
    'AbortSignal.timeout(1h) (no cancel)': () => perOp(N, () => AbortSignal.timeout(HOUR)),
  },
  'derive+read signal+cancel': {
    'polyctx withCancel': () =>
      perOp(N, () => {
        const [ctx, cancel] = withCancel(root)
        void ctx.signal
        cancel()
      }),
    'new AbortController() + signal + abort()': () =>
      perOp(N, () => {
        const c = new AbortController()
        void c.signal
        c.abort()
      }),
    'new AbortController() + signal + abort(reason)': () =>
      perOp(N, () => {
        const c = new AbortController()
        void c.signal
        c.abort(reason)
      }),
  },
  'abort fan-out to 10,000 children (ms)': {
    'polyctx, children without signal': () => fanOut(false),
    'polyctx, children with signal + listener': () => fanOut(true),
    'AbortSignal.any([root]) children + listener': () => {
      const parent = new AbortController()
      let seen = 0
      const kids = []
      for (let i = 0; i < FANOUT; i++) {
        const s = AbortSignal.any([parent.signal])
        s.addEventListener('abort', () => seen++)
        kids.push(s)
      }
      const t = process.hrtime.bigint()
      parent.abort(reason)
      const ms = Number(process.hrtime.bigint() - t) / 1e6
      if (seen !== FANOUT) throw new Error(`only ${seen} children aborted`)
      return ms
    },
  },
}

function fanOut(signals) {
  const [parent, cancel] = withCancel(root)
  let seen = 0
  const kids = []
  for (let i = 0; i < FANOUT; i++) {
    const [ctx] = withCancel(parent)
    if (signals) ctx.signal.addEventListener('abort', () => seen++)
    kids.push(ctx)
  }
  const t = process.hrtime.bigint()
  cancel()
  const ms = Number(process.hrtime.bigint() - t) / 1e6
  if (signals ? seen !== FANOUT : !kids.every((k) => k.isDone())) throw new Error('not every child aborted')
  return ms
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const samples = new Map()
for (let round = 0; round < ROUNDS; round++) {
  for (const [group, cases] of Object.entries(timeCases)) {
    for (const [name, run] of Object.entries(cases)) {
      const key = `${group}\t${name}`
      if (!samples.has(key)) samples.set(key, [])
      samples.get(key).push(run())
      await new Promise((resolve) => setImmediate(resolve)) // let finalizers run between cases
    }
  }
}

console.log(`node ${process.version}; ${ROUNDS} interleaved rounds, N=${N}; medians\n`)
let lastGroup = ''
for (const [key, xs] of samples) {
  const [group, name] = key.split('\t')
  if (group !== lastGroup) console.log(`${group}`)
  lastGroup = group
  const unit = group.endsWith('(ms)') ? 'ms' : 'ns'
  const value = unit === 'ms' ? median(xs).toFixed(2) : median(xs).toFixed(0)
  console.log(`  ${name.padEnd(48)} ${value.padStart(8)} ${unit}`)
}

const memoryCases = {
  'heap per live derived context (100,000 alive; bytes of JS heap / RSS)': {
    'polyctx withCancel': () => livePerChild({ count: 100_000, derive: () => withCancel(root)[0] }),
    'polyctx withCancel + signal': () =>
      livePerChild({
        count: 100_000,
        derive: () => {
          const [ctx] = withCancel(root)
          void ctx.signal
          return ctx
        },
      }),
    'new AbortController()': () => livePerChild({ count: 100_000, derive: () => new AbortController() }),
    'AbortSignal.any([parent])': () =>
      livePerChild({ count: 100_000, derive: () => AbortSignal.any([parentController.signal]) }),
  },
  'retained per dropped child (1,000,000 dropped under a live parent, after GC; bytes of heap / RSS)': {
    'polyctx withCancel': () => retainedPerChild({ count: 1_000_000, derive: () => withCancel(root)[0] }),
    'polyctx withCancel + signal read': () =>
      retainedPerChild({
        count: 1_000_000,
        derive: () => {
          const [ctx] = withCancel(root)
          void ctx.signal
          return ctx
        },
      }),
    'AbortSignal.any([parent])': () =>
      retainedPerChild({ count: 1_000_000, derive: () => AbortSignal.any([parentController.signal]) }),
  },
}

for (const [group, cases] of Object.entries(memoryCases)) {
  console.log(`\n${group}`)
  for (const [name, run] of Object.entries(cases)) {
    const { heap, rss } = await run()
    console.log(`  ${name.padEnd(48)} ${heap.toFixed(1).padStart(8)} B ${rss.toFixed(1).padStart(8)} B`)
  }
}
console.log('\n(RSS of the first memory case includes the allocator warming up; heap is the figure to compare.)')
