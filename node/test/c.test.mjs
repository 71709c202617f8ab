// Node and C in one process (issue 12, item 7): a real C addon, built here
// with cc against include/ctx.h and Node's node_api.h, with ctx_* left to
// bind to polyctx's addon, cancels and observes the same contexts as JS.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  background,
  withCancel,
  withCancelCause,
  withTimeout,
  withValue,
  createKey,
  cause,
  fromC,
  toC,
  cLibrary,
  Canceled,
  EndReason,
  afterFunc,
} from 'polyctx'
import { waitFor } from './fixtures/wait.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..', '..')
const hooks = (await import('polyctx')).default[Symbol.for('polyctx.test')]
let c
let addonPath

before(() => {
  const nodeInclude = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find((d) =>
    existsSync(join(d, 'node_api.h')),
  )
  assert.ok(nodeInclude, "Node's node_api.h is needed to build the test's C addon")
  const dir = mkdtempSync(join(tmpdir(), 'polyctx-c-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'c-worker.node')
  addonPath = out
  const build = spawnSync(
    process.env.CC || 'cc',
    ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O1', '-shared', '-fPIC',
      ...(process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : []),
      `-I${join(repo, 'include')}`, `-I${nodeInclude}`, join(here, 'fixtures', 'c-worker.c'), '-o', out],
    { encoding: 'utf8' },
  )
  assert.equal(build.status, 0, `cc failed:\n${build.stderr}`)
  assert.match(cLibrary(), /polyctx\.[\w-]+\.node$/)
  c = createRequire(import.meta.url)(out)
})

test('C blocks on a JS context and wakes when JS cancels it', async () => {
  const [ctx, cancel] = withCancelCause(background())
  const done = c.work(ctx.toC(), 10_000)
  await sleep(50)
  const start = performance.now()
  cancel(EndReason.clientDisconnected)
  const r = await waitFor(done, 'the C worker')
  assert.deepEqual([r.status, r.err, r.cause], ['done', 'context canceled', 'client disconnected'])
  assert.ok(performance.now() - start < 1000)
  const [timed] = withTimeout(background(), 30)
  const t = await waitFor(c.work(toC(timed), 10_000), 'the C worker')
  assert.deepEqual([t.status, t.err], ['done', 'context deadline exceeded'])
  const never = await c.work(background().toC(), 20)
  assert.equal(never.status, 'timeout')
})

test('JS observes and cancels contexts C made, with causes both ways', async () => {
  const [parent, cancelParent] = withCancel(background())
  const ptr = parent.toC()
  const [cPtr, kPtr] = c.child(ptr)
  c.release(ptr)
  const [ctx, cancel] = fromC(cPtr, kPtr)
  c.release(cPtr) // JS holds references of its own
  const aborted = new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }))
  c.cancel(kPtr, 'stopped by C')
  await waitFor(aborted, 'the signal to abort')
  assert.ok(ctx.err() instanceof Canceled)
  assert.equal(cause(ctx).message, 'stopped by C')
  cancel(new Error('too late'))
  assert.equal(cause(ctx).message, 'stopped by C', 'the first cause wins')
  c.releaseCancel(kPtr)

  // A JS cancel reaches C's view of a child C made.
  const [p2, cancel2] = withCancel(background())
  const p2Ptr = p2.toC()
  const [child2, k2] = c.child(p2Ptr)
  cancel2()
  assert.equal(c.err(child2), 'context canceled')
  for (const p of [p2Ptr, child2]) c.release(p)
  c.releaseCancel(k2)
  cancelParent()
})

test('a cancel made by C on the JS thread reaches JS without any other polyctx call', () => {
  // C code cancelling on the JS thread (an addon, an FFI call) is outside
  // every polyctx call, so nothing drains its events synchronously: they
  // must arrive on the loop's next turn by themselves. In a process of its
  // own, so that no other event (a deadline elsewhere) delivers them by chance.
  const script = `
    import { createRequire } from 'node:module'
    import { background, withCancel, fromC, afterFunc, cause, cLibrary } from 'polyctx'
    cLibrary()
    const c = createRequire(import.meta.url)(${JSON.stringify(addonPath)})
    const [parent] = withCancel(background())
    const [cPtr, kPtr] = c.child(parent.toC())
    const ctx = fromC(cPtr)
    const keepAlive = setTimeout(() => { console.log('never ran'); process.exit(1) }, 5000)
    afterFunc(ctx, () => { console.log('ran: ' + cause(ctx).message); clearTimeout(keepAlive) })
    c.cancel(kPtr, 'from C')
  `
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: here,
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(child.stdout.trim(), 'ran: from C', child.stderr)
})

test('values: one key finds strings from either side', () => {
  const key = createKey('request-id')
  const ctx = withValue(background(), key, 'req-42')
  const kPtr = key.toC()
  const ptr = ctx.toC()
  assert.equal(c.value(ptr, kPtr), 'req-42', 'C reads a JS string')
  assert.equal(c.value(ptr, createKey('other').toC()), null)
  const obj = withValue(background(), key, { not: 'a string' })
  const objPtr = obj.toC()
  assert.equal(c.value(objPtr, kPtr), '<pointer>', 'other JS values are opaque to C')
  for (const p of [ptr, objPtr]) c.release(p)
  c.releaseKey(kPtr)
})

test('fromC refuses what is not an address, and handles are released', () => {
  assert.throws(() => fromC(0n), RangeError)
  assert.throws(() => fromC(-1n), RangeError)
  assert.throws(() => fromC(5), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => toC({}), { code: 'ERR_INVALID_ARG_TYPE' })
  const before = hooks.liveCounts()
  const [ctx, cancel] = withTimeout(background(), 60_000)
  const ptr = ctx.toC()
  const back = fromC(ptr)
  c.release(ptr)
  assert.equal(back.deadline().getTime(), ctx.deadline().getTime())
  cancel()
  assert.ok(back.err() instanceof Canceled)
  assert.equal(hooks.liveCounts().deadlines, before.deadlines, 'the deadline is disarmed')
})
