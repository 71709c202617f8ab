// polyctx beside the platform's AbortController, AbortSignal.any and
// AbortSignal.timeout, in one run: `make bench-node` (node --expose-gc).
// Time cases are interleaved, each repeated ROUNDS times; the table shows
// medians. Memory cases run once each, after the time cases.
import http from 'node:http'
import { once } from 'node:events'
import { background, withCancel, withTimeout, afterFunc } from 'polyctx'
import { middleware } from 'polyctx/http'
import { Policy } from 'polyctx/wire'
import { livePerChild, retainedPerChild } from './memory.mjs'

// `--json`: JSON lines on stdout for bench/run.py (the human report goes to stderr).
const JSON_OUT = process.argv.includes('--json')
const log = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a)
const QUICK = process.argv.includes('--quick')
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 7))
const N = Number(process.env.BENCH_N ?? (QUICK ? 30_000 : 100_000))
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

// Where each case goes in bench/run.py's table: [operation, implementation]
// pairs, the implementation named `polyctx` for ours and after the peer otherwise.
const TABLE = {
  'derive+cancel\tpolyctx withCancel': [['derive+cancel', 'polyctx']],
  'derive+cancel\tpolyctx withTimeout(1h)': [['derive+cancel with deadline', 'polyctx']],
  'derive+cancel\tnew AbortController() + abort()': [['derive+cancel', 'new AbortController() + abort()']],
  'derive+cancel\tAbortSignal.any([parent]) (no cancel)': [['derive+cancel', 'AbortSignal.any([parent]), derive only']],
  'derive+cancel\tAbortSignal.timeout(1h) (no cancel)': [
    ['derive+cancel with deadline', 'AbortSignal.timeout(1h), derive only'],
  ],
  'derive+read signal+cancel\tpolyctx withCancel': [['derive+read signal+cancel', 'polyctx']],
  'derive+read signal+cancel\tnew AbortController() + signal + abort()': [
    ['derive+read signal+cancel', 'new AbortController() + signal + abort()'],
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

function emit(op, impl, unit, value) {
  if (JSON_OUT) console.log(JSON.stringify({ area: 'node', op, impl, unit, value: Number(value.toFixed(3)) }))
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

log(`node ${process.version}; ${ROUNDS} interleaved rounds, N=${N}; medians\n`)
let lastGroup = ''
for (const [key, xs] of samples) {
  const [group, name] = key.split('\t')
  if (group !== lastGroup) log(`${group}`)
  lastGroup = group
  const unit = group.endsWith('(ms)') ? 'ms' : 'ns'
  const value = unit === 'ms' ? median(xs).toFixed(2) : median(xs).toFixed(0)
  log(`  ${name.padEnd(48)} ${value.padStart(8)} ${unit}`)
  for (const [op, impl] of TABLE[key] ?? []) emit(op, impl, 'ns_per_op', median(xs) * (unit === 'ms' ? 1e6 : 1))
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

// The memory rows of bench/run.py's table: ours with and without a signal,
// each beside the platform's.
const MEMORY_TABLE = {
  'polyctx withCancel': [['JS heap bytes per live context', 'polyctx']],
  'polyctx withCancel + signal': [['JS heap bytes per live context with signal', 'polyctx']],
  'new AbortController()': [
    ['JS heap bytes per live context', 'new AbortController()'],
    ['JS heap bytes per live context with signal', 'new AbortController()'],
  ],
  'AbortSignal.any([parent])': [
    ['JS heap bytes per live context', 'AbortSignal.any([parent])'],
    ['JS heap bytes per live context with signal', 'AbortSignal.any([parent])'],
  ],
}
const RETAINED_TABLE = {
  'polyctx withCancel': [['heap bytes retained per dropped child', 'polyctx']],
  'polyctx withCancel + signal read': [['heap bytes retained per dropped child with signal', 'polyctx']],
  'AbortSignal.any([parent])': [
    ['heap bytes retained per dropped child', 'AbortSignal.any([parent])'],
    ['heap bytes retained per dropped child with signal', 'AbortSignal.any([parent])'],
  ],
}

for (const [group, cases] of Object.entries(memoryCases)) {
  log(`\n${group}`)
  const rows = group.startsWith('heap per live') ? MEMORY_TABLE : RETAINED_TABLE
  for (const [name, run] of Object.entries(cases)) {
    const { heap, rss } = await run()
    log(`  ${name.padEnd(48)} ${heap.toFixed(1).padStart(8)} B ${rss.toFixed(1).padStart(8)} B`)
    for (const [op, impl] of rows[name] ?? []) emit(op, impl, 'bytes', heap)
  }
}
log('\n(RSS of the first memory case includes the allocator warming up; heap is the figure to compare.)')

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
emit('10k after-funcs: cancel returns', 'polyctx', 'ns_per_op', returnedNs)
emit('10k after-funcs: all have run', 'polyctx', 'ns_per_op', allRanNs)

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
emit('per request: node:http + context', 'polyctx', 'ns_per_op', oursNs)
emit('per request: node:http + context', 'AbortController on res close', 'ns_per_op', plainNs)
