// ctx.signal with the platform's own abortable APIs: each stops when the
// context is done, and sees the context's error (directly, or as the cause
// of the AbortError it throws).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once, EventEmitter, getEventListeners } from 'node:events'
import { setTimeout as sleep, setInterval as every } from 'node:timers/promises'
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { background, withCancel, withCancelCause, withTimeout, Canceled, DeadlineExceeded } from 'polyctx'
import { waitFor } from './fixtures/wait.mjs'

/** The context error behind whatever an abortable API rejected with. */
function contextError(e) {
  return e.name === 'AbortError' && !(e instanceof Canceled) ? e.cause : e
}

test('fetch: a deadline aborts a slow request, and the server sees the client go', async () => {
  let serverSawClose
  const closed = new Promise((resolve) => (serverSawClose = resolve))
  const server = createServer((req, res) => {
    res.writeHead(200)
    res.write('partial')
    res.on('close', () => serverSawClose(!res.writableFinished))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    // Generous for a loaded machine: the deadline may still pass before the
    // headers arrive, and either way fetch rejects with the context's error.
    const [ctx] = withTimeout(background(), 500, new Error('budget spent'))
    const err = await fetch(`http://127.0.0.1:${server.address().port}/`, { signal: ctx.signal })
      .then((res) => res.text())
      .then(
        () => assert.fail('the body never ends'),
        (e) => e,
      )
    assert.equal(err, ctx.err(), 'fetch rejects with the signal reason itself')
    assert.equal(err.name, 'TimeoutError')
    assert.equal(err.cause.message, 'budget spent')
    assert.equal(await waitFor(closed, 'the server to see the client go'), true)
  } finally {
    server.closeAllConnections()
    server.close()
  }
})

test('fetch: an already-done context never sends the request', async () => {
  let requests = 0
  const server = createServer((req, res) => res.end(String(++requests)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const [ctx, cancel] = withCancel(background())
    cancel()
    await assert.rejects(fetch(`http://127.0.0.1:${server.address().port}/`, { signal: ctx.signal }), Canceled)
    assert.equal(requests, 0)
  } finally {
    server.close()
  }
})

test('timers/promises: setTimeout and setInterval stop with the context', async () => {
  const [ctx] = withTimeout(background(), 20)
  const err = await sleep(3600_000, 'late', { signal: ctx.signal }).catch((e) => e)
  assert.equal(err.name, 'AbortError')
  assert.equal(contextError(err), ctx.err())
  assert.ok(contextError(err) instanceof DeadlineExceeded)

  const [ticks, cancel] = withCancel(background())
  let n = 0
  await assert.rejects(async () => {
    for await (const _ of every(1, null, { signal: ticks.signal })) if (++n === 3) cancel()
  }, (e) => contextError(e) === ticks.err())
  assert.equal(n, 3)
})

test('events.once: waiting for an event stops with the context', async () => {
  const emitter = new EventEmitter()
  const [ctx, cancel] = withCancelCause(background())
  const waiting = once(emitter, 'never', { signal: ctx.signal })
  cancel(new Error('shutting down'))
  const err = await waiting.catch((e) => e)
  assert.equal(contextError(err).cause.message, 'shutting down')
  assert.equal(emitter.listenerCount('never'), 0)
})

test('fs.promises.readFile: a read in progress stops with the context', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'polyctx-'))
  try {
    const big = join(dir, 'big')
    await writeFile(big, Buffer.alloc(32 * 1024 * 1024))
    const [ctx, cancel] = withCancelCause(background())
    const reading = readFile(big, { signal: ctx.signal })
    cancel(new Error('client went away')) // the file is being opened and read on the thread pool
    const err = await reading.catch((e) => e)
    assert.equal(err.name, 'AbortError')
    assert.equal(contextError(err).cause.message, 'client went away')

    const [timed] = withTimeout(background(), 0)
    await assert.rejects(readFile(big, { signal: timed.signal }), (e) => contextError(e) instanceof DeadlineExceeded)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('stream.pipeline: an endless pipeline stops with the context and destroys its streams', async () => {
  const [ctx] = withTimeout(background(), 50, 'budget')
  let written = 0
  const source = new Readable({
    read() {
      setImmediate(() => this.push('x'))
    },
  })
  const sink = new Writable({
    write(chunk, _enc, callback) {
      written += chunk.length
      callback()
    },
  })
  const err = await waitFor(
    pipeline(source, sink, { signal: ctx.signal }).catch((e) => e),
    'the pipeline to stop',
  )
  assert.equal(err.name, 'AbortError')
  assert.equal(contextError(err).cause, 'budget')
  assert.ok(written > 0)
  assert.ok(source.destroyed && sink.destroyed)
})

test('signals handed to the platform are let go once it is done with them', async () => {
  const [ctx, cancel] = withCancel(background())
  await sleep(1, null, { signal: ctx.signal })
  assert.equal(getEventListeners(ctx.signal, 'abort').length, 0, 'a finished timer stops listening')
  const pending = once(new EventEmitter(), 'never', { signal: ctx.signal }).catch((e) => e)
  assert.equal(getEventListeners(ctx.signal, 'abort').length, 1)
  cancel()
  assert.equal((await pending).name, 'AbortError')
  assert.equal(getEventListeners(ctx.signal, 'abort').length, 0)
})
