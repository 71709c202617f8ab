// The demo's Node service: Express with polyctx's middleware, and a C
// library (c_worker.c) doing the blocking part of the work on the same
// request context, in the same process, through libctx. It prints its
// timeline as JSON lines and serves /stats (work in flight, in JS and C).
//
//   node node_backend.mjs <c_worker.node> [workMs]
import { createRequire } from 'node:module'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { cLibrary, cause, stats as nativeStats } from 'polyctx'
import { middleware, stats as httpStats } from 'polyctx/http'
import { Policy, traceContext } from 'polyctx/wire'

// Express is one of polyctx's pinned dev dependencies; found from there.
const require = createRequire(realpathSync(fileURLToPath(import.meta.resolve('polyctx'))))
const express = require('express')

const [workerPath, workArg] = process.argv.slice(2)
const work = Number(workArg ?? 250)
cLibrary() // make the ctx_* symbols global before the C library loads
const cWorker = createRequire(import.meta.url)(workerPath)

const emit = (fields) => process.stdout.write(JSON.stringify({ hop: 'node', ...fields }) + '\n')

const app = express()
// Before the middleware: a look at the counters is not a request to count.
app.get('/stats', (req, res) => {
  res.json({ ...httpStats(), ...nativeStats(), c_in_flight: cWorker.inFlight() })
})
app.use(middleware({ policy: Policy.internal() }))
app.get('/search', async (req, res) => {
  const ctx = req.ctx
  const trace = traceContext(ctx)?.traceId ?? ''
  const budgetMs = ctx.deadline() ? Math.round(ctx.deadline().getTime() - Date.now()) : -1
  emit({ event: 'start', budget_ms: budgetMs, trace })
  const slow = req.query.slow === 'node'
  // The C library blocks on the request's context; ctx.toC() hands it a reference.
  const r = await cWorker.search(ctx.toC(), slow ? 5_000 : work)
  if (r.finished) {
    emit({ event: 'done', elapsed_ms: Math.round(r.waitedMs), trace, in: 'c' })
    res.send('node+c: 3 results\n')
  } else {
    emit({ event: 'stopped', elapsed_ms: Math.round(r.waitedMs), why: r.cause || cause(ctx)?.message, trace, in: 'c' })
    if (!res.writableEnded) res.status(504).send(r.cause)
  }
})

const server = app.listen(0, '127.0.0.1', () => emit({ event: 'listening', port: server.address().port }))
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)))
