// polyctx beside the platform's AbortController, AbortSignal.any and
// AbortSignal.timeout, in one run: `make bench-node` (node --expose-gc).
// Time cases are interleaved, each repeated ROUNDS times; the table shows
// medians and p99s (nearest rank over the rounds). Memory cases run once
// each, after the time cases.
//
//   node --expose-gc bench.mjs [--json] [--quick] [--lateness LABEL]
import http from 'node:http'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import { background, withCancel, withTimeout, afterFunc, toC, fromC, cLibrary, stats } from 'polyctx'
import { middleware } from 'polyctx/http'
import { Policy } from 'polyctx/wire'
import { livePerChild, retainedPerChild, settle } from './memory.mjs'

// koffi (a pinned dev dependency) reaches the C ABI the addon exports, and
// glibc's allocator statistics, where the native side's memory is counted.
const koffi = createRequire(import.meta.url)('koffi')
const libc = koffi.load('libc.so.6')
const MallInfo2 = koffi.struct('mallinfo2', {
  arena: 'size_t',
  ordblks: 'size_t',
  smblks: 'size_t',
  hblks: 'size_t',
  hblkhd: 'size_t',
  usmblks: 'size_t',
  fsmblks: 'size_t',
  uordblks: 'size_t',
  fordblks: 'size_t',
  keepcost: 'size_t',
})
const mallinfo2 = libc.func('mallinfo2', MallInfo2, [])
/** Bytes glibc has handed out (small chunks and mapped blocks): the native side. */
const nativeInUse = () => {
  const m = mallinfo2()
  return Number(m.uordblks) + Number(m.hblkhd)
}

// `--json`: JSON lines on stdout for bench/run.py (the human report goes to stderr).
const JSON_OUT = process.argv.includes('--json')
const log = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a)
const QUICK = process.argv.includes('--quick')
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 7))
const N = Number(process.env.BENCH_N ?? (QUICK ? 30_000 : 100_000))
const FANOUT = 10_000
const HOUR = 3600_000

if (process.argv.includes('--lateness')) {
  await lateness(process.argv[process.argv.indexOf('--lateness') + 1])
  process.exit(0)
}

const [root] = withCancel(background())
const parentController = new AbortController()
const reason = new Error('done')

/** ns per operation for `n` runs of `op`. */
function perOp(n, op) {
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) op()
  return Number(process.hrtime.bigint() - t) / n
}

/**
 * As `perOp`, with the cleanup each operation leaves behind timed too: the
 * loop yields every 1,000 operations, as a server's does between requests,
 * so finalizers run as they would; then a full collection, and the wait
 * until polyctx's native handles are back where they started (the
 * finalizers that free them have run). Both sides pay for the collection.
 */
async function withCleanup(n, op) {
  await settle()
  const handles = stats().contexts
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    op()
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
  }
  globalThis.gc()
  for (let i = 0; i < 100 && stats().contexts > handles; i++) await new Promise((resolve) => setImmediate(resolve))
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
    'polyctx withCancel, GC and finalizers timed': () =>
      withCleanup(N, () => {
        const [, cancel] = withCancel(root)
        cancel()
      }),
    'new AbortController() + abort(reason), GC timed': () => withCleanup(N, () => new AbortController().abort(reason)),
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
    'polyctx withCancel, GC and finalizers timed': () =>
      withCleanup(N, () => {
        const [ctx, cancel] = withCancel(root)
        void ctx.signal
        cancel()
      }),
    'new AbortController() + signal + abort(reason), GC timed': () =>
      withCleanup(N, () => {
        const c = new AbortController()
        void c.signal
        c.abort(reason)
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

// Where each case goes in bench/run.py's table: [operation, implementation]
// pairs, the implementation named `polyctx` for ours and after the peer otherwise.
const TABLE = {
  'derive+cancel\tpolyctx withCancel': [['derive+cancel', 'polyctx']],
  'derive+cancel\tpolyctx withTimeout(1h)': [['derive+cancel with deadline', 'polyctx']],
  'derive+cancel\tnew AbortController() + abort()': [['derive+cancel', 'new AbortController() + abort()']],
  'derive+cancel\tnew AbortController() + abort(reason)': [['derive+cancel', 'new AbortController() + abort(reason)']],
  'derive+cancel\tpolyctx withCancel, GC and finalizers timed': [['derive+cancel, GC and finalizers timed', 'polyctx']],
  'derive+cancel\tnew AbortController() + abort(reason), GC timed': [
    ['derive+cancel, GC and finalizers timed', 'new AbortController() + abort(reason)'],
  ],
  'derive+cancel\tAbortSignal.any([parent]) (no cancel)': [['derive+cancel', 'AbortSignal.any([parent]), derive only']],
  'derive+cancel\tAbortSignal.timeout(1h) (no cancel)': [
    ['derive+cancel with deadline', 'AbortSignal.timeout(1h), derive only'],
  ],
  'derive+read signal+cancel\tpolyctx withCancel': [['derive+read signal+cancel', 'polyctx']],
  'derive+read signal+cancel\tnew AbortController() + signal + abort()': [
    ['derive+read signal+cancel', 'new AbortController() + signal + abort()'],
  ],
  'derive+read signal+cancel\tnew AbortController() + signal + abort(reason)': [
    ['derive+read signal+cancel', 'new AbortController() + signal + abort(reason)'],
  ],
  'derive+read signal+cancel\tpolyctx withCancel, GC and finalizers timed': [
    ['derive+read signal+cancel, GC and finalizers timed', 'polyctx'],
  ],
  'derive+read signal+cancel\tnew AbortController() + signal + abort(reason), GC timed': [
    ['derive+read signal+cancel, GC and finalizers timed', 'new AbortController() + signal + abort(reason)'],
  ],
  'abort fan-out to 10,000 children (ms)\tpolyctx, children without signal': [
    ['abort fan-out to 10,000 children without signal', 'polyctx'],
  ],
  'abort fan-out to 10,000 children (ms)\tpolyctx, children with signal + listener': [
    ['abort fan-out to 10,000 children with signal + listener', 'polyctx'],
  ],
  'abort fan-out to 10,000 children (ms)\tAbortSignal.any([root]) children + listener': [
    ['abort fan-out to 10,000 children with signal + listener', 'AbortSignal.any([root])'],
  ],
}

/** One row: a value (memory), or the median and p99 of samples. */
function emit(op, impl, unit, samples) {
  if (!JSON_OUT) return
  const row = { area: 'node', op, impl, unit }
  if (Array.isArray(samples)) {
    row.value = Number(median(samples).toFixed(3))
    row.p99 = Number(percentile(samples, 0.99).toFixed(3))
  } else {
    row.value = Number(samples.toFixed(3))
  }
  console.log(JSON.stringify(row))
}

/** The nearest-rank quantile, as bench/rust's harness takes it. */
function percentile(xs, q) {
  return [...xs].sort((a, b) => a - b)[Math.round((xs.length - 1) * q)]
}

function median(xs) {
  return percentile(xs, 0.5)
}

const samples = new Map()
for (let round = 0; round < ROUNDS; round++) {
  for (const [group, cases] of Object.entries(timeCases)) {
    for (const [name, run] of Object.entries(cases)) {
      const key = `${group}\t${name}`
      if (!samples.has(key)) samples.set(key, [])
      samples.get(key).push(await run())
      await new Promise((resolve) => setImmediate(resolve)) // let finalizers run between cases
    }
  }
}

log(`node ${process.version}; ${ROUNDS} interleaved rounds, N=${N}; medians\n`)
let lastGroup = ''
for (const [key, xs] of samples) {
  const [group, name] = key.split('\t')
  if (group !== lastGroup) log(`${group}`)
  lastGroup = group
  const unit = group.endsWith('(ms)') ? 'ms' : 'ns'
  const value = unit === 'ms' ? median(xs).toFixed(2) : median(xs).toFixed(0)
  log(`  ${name.padEnd(48)} ${value.padStart(8)} ${unit}`)
  for (const [op, impl] of TABLE[key] ?? []) emit(op, impl, 'ns_per_op', xs.map((x) => x * (unit === 'ms' ? 1e6 : 1)))
}

// A context crossing between JS and C code in the same process, per
// operation, the C side called through koffi as a JS program drives a C
// library. The floor is what any handoff through koffi costs: two calls.
const cAbi = koffi.load(cLibrary())
const cRetain = cAbi.func('uint64_t ctx_retain(uint64_t ctx)')
const cRelease = cAbi.func('void ctx_release(uint64_t ctx)')
const [crossing, endCrossing] = withCancel(root)
const CROSS = QUICK ? 20_000 : 100_000
const crossCases = {
  'hand a context to C (toC + C\'s release)': () => perOp(CROSS, () => cRelease(toC(crossing))),
  'take a context from C (fromC)': () => {
    const ptr = toC(crossing)
    const ns = perOp(CROSS, () => fromC(ptr))
    cRelease(ptr)
    return ns
  },
  'C <-> JS round trip (toC, fromC, release)': () =>
    perOp(CROSS, () => {
      const ptr = toC(crossing)
      fromC(ptr)
      cRelease(ptr)
    }),
  'floor: ctx_retain + ctx_release through koffi': () => {
    const ptr = toC(crossing)
    const ns = perOp(CROSS, () => cRelease(cRetain(ptr)))
    cRelease(ptr)
    return ns
  },
}
const crossSamples = Object.fromEntries(Object.keys(crossCases).map((k) => [k, []]))
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(crossCases)) {
    crossSamples[name].push(run())
    await new Promise((resolve) => setImmediate(resolve))
  }
}
endCrossing()
log('\na context crossing between JS and C (koffi) in one process (ns)')
for (const [name, xs] of Object.entries(crossSamples)) {
  log(`  ${name.padEnd(48)} ${median(xs).toFixed(0).padStart(8)} ns`)
  if (!name.startsWith('floor')) emit(name, 'polyctx', 'ns_per_op', xs)
}
const floor = crossSamples['floor: ctx_retain + ctx_release through koffi']
emit("hand a context to C (toC + C's release)", 'two koffi calls (retain + release)', 'ns_per_op', floor)

// Memory: JS heap plus native memory (glibc's count, which holds the core's
// contexts and the addon's tables), per live context and per dropped child.
const LIVE = QUICK ? 20_000 : 100_000
const DROPPED = QUICK ? 100_000 : 1_000_000
const withSignal = (pair) => {
  void pair[0].signal
  return pair
}
const controllerWithSignal = () => {
  const c = new AbortController()
  void c.signal
  return c
}
const memoryCases = {
  [`per live context (${LIVE.toLocaleString('en')} alive, each with its cancel function; JS heap + native bytes)`]: {
    'polyctx withCancel': [['bytes per live context (JS heap + native)', 'polyctx']],
    'new AbortController()': [['bytes per live context (JS heap + native)', 'new AbortController()']],
    'polyctx withCancel + signal read': [['bytes per live context with its signal (JS heap + native)', 'polyctx']],
    'new AbortController() + signal read': [
      ['bytes per live context with its signal (JS heap + native)', 'new AbortController() + signal read'],
    ],
    'AbortSignal.any([parent])': [
      ['bytes per live context with its signal (JS heap + native)', 'AbortSignal.any([parent])'],
    ],
  },
  [`retained per dropped child (${DROPPED.toLocaleString('en')} dropped under a live parent, after GC; JS heap + native bytes)`]: {
    'polyctx withCancel': [['bytes retained per dropped child (JS heap + native)', 'polyctx']],
    'polyctx withCancel + signal read': [['bytes retained per dropped child with signal (JS heap + native)', 'polyctx']],
    'AbortSignal.any([parent])': [
      ['bytes retained per dropped child (JS heap + native)', 'AbortSignal.any([parent])'],
      ['bytes retained per dropped child with signal (JS heap + native)', 'AbortSignal.any([parent])'],
    ],
  },
}
const derivations = {
  'polyctx withCancel': () => withCancel(root),
  'polyctx withCancel + signal read': () => withSignal(withCancel(root)),
  'new AbortController()': () => new AbortController(),
  'new AbortController() + signal read': controllerWithSignal,
  'AbortSignal.any([parent])': () => AbortSignal.any([parentController.signal]),
}

for (const [group, cases] of Object.entries(memoryCases)) {
  log(`\n${group}`)
  const live = group.startsWith('per live')
  for (const [name, rows] of Object.entries(cases)) {
    const derive = derivations[name]
    const { heap, native } = live
      ? await livePerChild({ count: LIVE, derive, native: nativeInUse })
      : await retainedPerChild({ count: DROPPED, derive, native: nativeInUse })
    const total = Math.max(heap, 0) + Math.max(native, 0)
    log(`  ${name.padEnd(48)} ${total.toFixed(1).padStart(8)} B  (JS heap ${heap.toFixed(1)}, native ${native.toFixed(1)})`)
    for (const [op, impl] of rows) emit(op, impl, 'bytes', total)
  }
}

// 10,000 after-funcs on one context, then one cancel: when cancel() returns
// and when the last function has run (on this thread, as microtasks), as
// bench/rust and the C bench report them.
const AFTER_FUNCS = 10_000
async function afterFuncs() {
  const [ctx, cancel] = withCancel(root)
  let ran = 0
  let allRan
  const done = new Promise((resolve) => (allRan = resolve))
  const fn = () => {
    if (++ran === AFTER_FUNCS) allRan()
  }
  for (let i = 0; i < AFTER_FUNCS; i++) afterFunc(ctx, fn)
  const t = process.hrtime.bigint()
  cancel()
  const returned = Number(process.hrtime.bigint() - t)
  await done
  return [returned, Number(process.hrtime.bigint() - t)]
}

const afterRounds = []
for (let round = 0; round < ROUNDS; round++) afterRounds.push(await afterFuncs())
const returnedNs = median(afterRounds.map((r) => r[0]))
const allRanNs = median(afterRounds.map((r) => r[1]))
log('\n10k after-funcs on one context (ms)')
log(`  ${'cancel returns'.padEnd(48)} ${(returnedNs / 1e6).toFixed(2).padStart(8)} ms`)
log(`  ${'all have run'.padEnd(48)} ${(allRanNs / 1e6).toFixed(2).padStart(8)} ms`)
emit('10k after-funcs: cancel returns', 'polyctx', 'ns_per_op', afterRounds.map((r) => r[0]))
emit('10k after-funcs: all have run', 'polyctx', 'ns_per_op', afterRounds.map((r) => r[1]))

// Per request, over real connections on loopback: a node:http server whose
// handler needs a per-request cancellation signal. The plain way: an
// AbortController aborted on res 'close' (no budget, no end reason). Ours: polyctx/http's middleware
// (headers read under a policy, the budget armed, current() set, the end
// reason recorded). The difference is the middleware's cost per request.
const REQUESTS = QUICK ? 2_000 : 10_000
async function serve(handle) {
  const server = http.createServer(handle)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  const get = () =>
    new Promise((resolve, reject) =>
      http
        .get({ port: server.address().port, agent, headers: { 'request-timeout-ms': '5000' } }, (res) => res.resume().on('end', resolve))
        .on('error', reject),
    )
  const t = process.hrtime.bigint()
  for (let sent = 0; sent < REQUESTS; sent += 8) await Promise.all(Array.from({ length: 8 }, get))
  const ns = Number(process.hrtime.bigint() - t) / REQUESTS
  agent.destroy()
  server.closeAllConnections()
  server.close()
  return ns
}
const plainHandler = (req, res) => {
  const controller = new AbortController()
  res.once('close', () => controller.abort())
  void controller.signal
  res.end('ok')
}
const use = middleware({ policy: Policy.internal() })
const polyctxHandler = (req, res) =>
  use(req, res, () => {
    void req.ctx.signal
    res.end('ok')
  })
const perRequest = { plain: [], polyctx: [] }
await serve(plainHandler) // warm-up, not counted
await serve(polyctxHandler)
for (let round = 0; round < ROUNDS; round++) {
  // Alternating which goes first, so neither always runs on a warmer machine.
  const order = round % 2 === 0 ? ['plain', 'polyctx'] : ['polyctx', 'plain']
  for (const which of order) perRequest[which].push(await serve(which === 'plain' ? plainHandler : polyctxHandler))
}
const plainNs = median(perRequest.plain)
const oursNs = median(perRequest.polyctx)
log(`\nper request over node:http on loopback (${REQUESTS} requests, 8 at a time; us)`)
log(`  ${'AbortController aborted on res close'.padEnd(48)} ${(plainNs / 1e3).toFixed(1).padStart(8)} us`)
log(`  ${'polyctx/http middleware'.padEnd(48)} ${(oursNs / 1e3).toFixed(1).padStart(8)} us`)
log(`  ${'difference (the middleware\'s cost)'.padEnd(48)} ${((oursNs - plainNs) / 1e3).toFixed(1).padStart(8)} us`)
emit('per request: node:http + context', 'polyctx', 'ns_per_op', perRequest.polyctx)
emit('per request: node:http + context', 'AbortController on res close', 'ns_per_op', perRequest.plain)

/**
 * From a context's deadline to the JS code waiting on it running, p50/p99/max
 * over deadlines 2 to 4 ms ahead (whole milliseconds: Node's timers take no
 * less), beside Node's own timers for the same delay. bench/run.py runs this
 * idle and under bench/load.py's load.
 */
async function lateness(label) {
  const count = QUICK ? 50 : 300
  const keepAlive = setInterval(() => {}, 1 << 30) // done() does not hold the loop
  const now = () => Number(process.hrtime.bigint())
  const rows = new Map()
  const add = (op, impl, ns) => {
    const key = `${op}\t${impl}`
    if (!rows.has(key)) rows.set(key, [])
    rows.get(key).push(Math.max(0, ns))
  }
  const signalOp = 'node: abort listener on ctx.signal'
  const doneOp = 'node: awaiting ctx.done()'
  for (let i = 0; i < count; i++) {
    const ahead = 2 + (i % 3)
    let deadline = now() + ahead * 1e6
    const [ctx, cancel] = withTimeout(background(), ahead)
    // A loaded machine may pass the deadline before the listener is added.
    if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }))
    add(signalOp, 'polyctx', now() - deadline)
    cancel()
    deadline = now() + ahead * 1e6
    const signal = AbortSignal.timeout(ahead)
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    add(signalOp, 'AbortSignal.timeout', now() - deadline)

    deadline = now() + ahead * 1e6
    const [ctx2, cancel2] = withTimeout(background(), ahead)
    await ctx2.done()
    add(doneOp, 'polyctx', now() - deadline)
    cancel2()
    deadline = now() + ahead * 1e6
    await new Promise((resolve) => setTimeout(resolve, ahead))
    add(doneOp, 'setTimeout', now() - deadline)
  }
  clearInterval(keepAlive)
  for (const [key, xs] of rows) {
    const [op, impl] = key.split('\t')
    const row = {
      area: 'lateness',
      op,
      impl,
      unit: 'ns_per_op',
      load: label,
      value: Math.round(percentile(xs, 0.5)),
      p99: Math.round(percentile(xs, 0.99)),
      max: Math.round(Math.max(...xs)),
    }
    if (JSON_OUT) console.log(JSON.stringify(row))
    else {
      const [p50, p99, max] = [row.value, row.p99, row.max].map((ns) => (ns / 1e3).toFixed(0).padStart(7))
      log(`${op.padEnd(40)} ${impl.padEnd(22)} p50 ${p50} µs  p99 ${p99}  max ${max}`)
    }
  }
}
