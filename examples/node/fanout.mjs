// The article's leaky fan-out, fixed with polyctx in Node: one request
// deadline, five downstream calls in a group (three over HTTP to a local
// server, two on timers), and every slow call stops the moment the deadline
// passes, leaving no context running.
//
// Run with `make demo` (or `node examples/node/fanout.mjs` once polyctx is
// installed next to it).
import { createServer } from 'node:http'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { background, withTimeout, withValue, createKey, cause, group, debug } from 'polyctx'

const TRACE_ID = createKey('trace-id')
const SERVICES = [
  ['auth', 20, 'timer'],
  ['profile', 60, 'http'],
  ['search', 400, 'http'],
  ['ads', 900, 'timer'],
  ['recommend', 2000, 'http'],
]

// A downstream service that takes `?ms=` to answer, and gives up as soon as
// its client goes away.
const server = createServer((req, res) => {
  const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms'))
  const timer = setTimeout(() => res.end('ok'), ms)
  res.on('close', () => clearTimeout(timer))
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const base = `http://127.0.0.1:${server.address().port}`

// Downstream calls know nothing about deadlines: they take a signal, as
// every Node API does.
async function fetchService(name, ms, signal) {
  const res = await fetch(`${base}/${name}?ms=${ms}`, { signal })
  return res.text()
}

async function compute(ms, signal) {
  await sleep(ms, undefined, { signal })
  return 'ok'
}

const start = performance.now()
const at = () => `[${String(Math.round(performance.now() - start)).padStart(4)} ms]`

// One task of the group: the call, and what became of it.
async function call(ctx, name, ms, kind) {
  try {
    const answer = await (kind === 'http' ? fetchService(name, ms, ctx.signal) : compute(ms, ctx.signal))
    console.log(`${at()} ${name.padEnd(9)} answered ${answer} (needed ${ms} ms)`)
  } catch (e) {
    if (!ctx.isDone()) throw e // a real failure: the group cancels the rest
    // fetch rejects with the signal's reason, timers with an AbortError
    // wrapping it: either way the context says why.
    console.log(`${at()} ${name.padEnd(9)} stopped: ${ctx.err().message}, would have needed ${ms} ms`)
  }
}

debug.track() // every context made from here on is listed until it is freed
const request = withValue(background(), TRACE_ID, '4bf92f3577b34da6')
const [ctx, cancel] = withTimeout(request, 150, new Error('request budget of 150ms spent'))
try {
  console.log(`node: request ${ctx.value(TRACE_ID)} fans out to ${SERVICES.length} services under a 150 ms deadline`)
  // Go's errgroup: each call gets the group's context; wait() returns once every call has.
  await group(ctx, SERVICES.map(([name, ms, kind]) => (ctx) => call(ctx, name, ms, kind)))
} finally {
  cancel()
}
const running = debug.snapshot().running.length
console.log(`${at()} contexts still running: ${running} (cause: ${cause(ctx).message})`)
server.close()
