'use strict'
// The article's patterns as helpers, with promises: a group of tasks under
// one context (Go's errgroup), retry with backoff under one budget, and
// sleeping or waiting as long as a context allows.
//
// The retry rules are the core's (`Backoff`: native.backoffNext decides,
// after each failed attempt, whether to try again and after how long);
// this file only sleeps on Node's timers as told. Promises cannot be
// stopped from outside: the group's and retry's work stops because it
// listens to its context (`ctx.signal`, as every Node API takes one).
// Nothing here leaves a timer or a listener behind once it settles.

const internal = require('./internal.js')
const { native, handle, invalidArg, outOfRange, typeName, currentStore, describe } = internal
const { withCancelCause, cause, ContextError } = require('./index.js')
const { GIVE_UP_ATTEMPTS, GIVE_UP_DEADLINE, GIVE_UP_CANCELED } = native

// ---------------------------------------------------------------------------
// Sleep and wait

// setTimeout's longest delay; longer sleeps are made of several.
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Resolves after `ms` milliseconds, or rejects with `ctx.err()` as soon as
 * `ctx` is done, whichever is first. Keeps the process alive while it
 * sleeps, as a timer does.
 */
function sleep(ctx, ms) {
  handle(ctx, 'sleep')
  if (typeof ms !== 'number') throw invalidArg(`polyctx.sleep: ms must be a number of milliseconds, got ${typeName(ms)}`)
  if (Number.isNaN(ms)) throw outOfRange('polyctx.sleep: ms must be a number of milliseconds, got NaN')
  if (ctx.isDone()) return Promise.reject(ctx.err())
  const until = performance.now() + ms
  return new Promise((resolve, reject) => {
    const signal = ctx.signal
    let timer
    const onAbort = () => {
      clearTimeout(timer)
      reject(ctx.err())
    }
    const arm = () => {
      const left = until - performance.now()
      if (left <= 0) {
        signal.removeEventListener('abort', onAbort)
        resolve()
        return
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    arm()
  })
}

/**
 * Settles as `promise` does, or rejects with `ctx.err()` as soon as `ctx` is
 * done, whichever is first. A promise cannot be stopped from outside: give
 * the operation `ctx.signal` too, so that it stops rather than run on
 * unobserved (its outcome is then ignored, never reported as unhandled).
 */
function waitFor(ctx, promise) {
  handle(ctx, 'waitFor')
  const settled = Promise.resolve(promise)
  if (ctx.isDone()) {
    settled.catch(() => {})
    return Promise.reject(ctx.err())
  }
  return new Promise((resolve, reject) => {
    const signal = ctx.signal
    const onAbort = () => reject(ctx.err())
    signal.addEventListener('abort', onAbort, { once: true })
    settled.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

// ---------------------------------------------------------------------------
// Group

const NO_ERROR = Symbol('no error')

/**
 * A group of tasks under one context (Go's `errgroup.WithContext`). Each
 * task gets the group's context, a child of `parent`, which is also
 * `current()` in it. The first task to fail cancels that context with its
 * error as the cause, so the others stop (they listen to it); `wait()`
 * settles once every task has, then cancels the context: it rejects with
 * the first error, as is. `limit` bounds how many run at once; the others
 * wait their turn, and never start if the context is done first.
 */
class Group {
  #ctx
  #cancel
  #limit
  #running = 0
  #pending = 0
  #queue = []
  #error = NO_ERROR
  #idle = null // { promise, resolve } while someone waits
  #closed = false

  constructor(parent, options = {}) {
    handle(parent, 'Group')
    const limit = options?.limit ?? null
    if (limit !== null && (!Number.isInteger(limit) || limit < 1)) {
      throw outOfRange(`polyctx.Group: limit must be a positive integer or null, got ${typeName(limit)}`)
    }
    this.#limit = limit
    ;[this.#ctx, this.#cancel] = withCancelCause(parent)
  }

  /** The group's context: done when the parent is, at the first failure, or once `wait()` has settled. */
  get context() {
    return this.#ctx
  }

  /**
   * Runs `fn(ctx)` as a task of the group. Returns its promise, which the
   * group handles: ignoring it never reports an unhandled rejection.
   */
  go(fn) {
    if (typeof fn !== 'function') throw invalidArg(`polyctx.Group.go: fn must be a function, got ${typeName(fn)}`)
    if (this.#closed) throw new Error('polyctx.Group.go: the group has ended (wait() settled)')
    this.#pending++
    let start
    let started = false
    const task = new Promise((resolve, reject) => {
      start = () => {
        if (this.#ctx.isDone()) {
          reject(this.#ctx.err()) // its turn came too late: never started
          return
        }
        started = true
        this.#running++
        try {
          resolve(currentStore.run(this.#ctx, fn, this.#ctx))
        } catch (e) {
          reject(e)
        }
      }
    })
    task.then(
      () => this.#settled(started, NO_ERROR),
      (e) => this.#settled(started, e),
    )
    if (this.#limit === null || this.#running < this.#limit) start()
    else this.#queue.push(start)
    return task
  }

  #settled(started, error) {
    if (error !== NO_ERROR) this.#fail(error)
    this.#pending--
    if (started) this.#running--
    while (this.#queue.length !== 0 && (this.#limit === null || this.#running < this.#limit)) this.#queue.shift()()
    if (this.#pending === 0 && this.#idle !== null) this.#idle.resolve()
  }

  #fail(error) {
    if (this.#error !== NO_ERROR) return
    this.#error = error
    this.#cancel(error)
  }

  /**
   * Settles once every task has: rejects with the first error, or
   * resolves. Then the group's context is canceled, and `go()` refuses.
   */
  async wait() {
    // A loop: a task may start another one as it ends.
    while (this.#pending !== 0) {
      if (this.#idle === null) {
        let resolve
        const promise = new Promise((r) => (resolve = r))
        this.#idle = { promise, resolve }
      }
      await this.#idle.promise
      this.#idle = null
    }
    this.#closed = true
    this.#cancel()
    if (this.#error !== NO_ERROR) throw this.#error
  }
}

/**
 * Runs every function of `tasks` as a task of a `Group` of `parent` (each
 * called with the group's context) and resolves to their results, in
 * order, once all have succeeded; rejects with the first error once every
 * task has settled.
 */
async function group(parent, tasks, options) {
  const g = new Group(parent, options)
  const promises = []
  try {
    for (const fn of tasks) promises.push(g.go(fn))
  } catch (e) {
    g.go(() => Promise.reject(e)) // a bad task: the group fails, and the started ones stop
  }
  await g.wait()
  return Promise.all(promises)
}

// ---------------------------------------------------------------------------
// Retry

/**
 * How to space the attempts of `retry`, in milliseconds: waits growing by
 * `multiplier` from `initial` to at most `max`, each shortened by up to
 * `jitter` (0 to 1) at random; at most `maxAttempts` attempts; and, given
 * `attemptTime` (how long one attempt is expected to take), never an attempt
 * that the context's remaining time cannot fit. The rules are the core's.
 */
class Backoff {
  #settings

  constructor(options = {}) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArg(`polyctx.Backoff: options must be an object, got ${typeName(options)}`)
    }
    const { initial = 100, max = 10_000, multiplier = 2, jitter = 0.2, maxAttempts = null, attemptTime = null } = options
    const settings = { initial, max, multiplier, jitter, maxAttempts, attemptTime }
    for (const [name, value] of Object.entries(settings)) {
      const optional = name === 'maxAttempts' || name === 'attemptTime'
      if (typeof value !== 'number' && !(optional && value === null)) {
        throw invalidArg(`polyctx.Backoff: ${name} must be a number${optional ? ' or null' : ''}, got ${typeName(value)}`)
      }
    }
    // For the native side, which reads a missing optional as undefined, not null.
    const native_ = { ...settings, maxAttempts: maxAttempts ?? undefined, attemptTime: attemptTime ?? undefined }
    const refused = native.backoffCheck(native_)
    if (refused !== null) throw outOfRange(`polyctx.Backoff: ${refused}`)
    this.#settings = native_
    Object.assign(this, settings)
    Object.freeze(this)
  }

  /**
   * The decision after `attempts` failed attempts (0: before the first):
   * the milliseconds to wait, or why to give up: `'attempts'`, `'deadline'`
   * or `'canceled'`. `random` in [0, 1) replaces the random draw (for tests).
   */
  next(ctx, attempts, random) {
    const h = handle(ctx, 'Backoff.next')
    if (!Number.isInteger(attempts) || attempts < 0 || attempts > 2 ** 32 - 1) {
      throw outOfRange(`polyctx.Backoff.next: attempts must be an integer from 0 to 2**32 - 1, got ${typeName(attempts)}`)
    }
    if (random !== undefined && !(typeof random === 'number' && random >= 0 && random < 1)) {
      throw outOfRange(`polyctx.Backoff.next: random must be a number in [0, 1), got ${typeName(random)}`)
    }
    const next = native.backoffNext(h, this.#settings, attempts, random ?? null)
    if (next >= 0) return next
    return next === GIVE_UP_ATTEMPTS ? 'attempts' : next === GIVE_UP_DEADLINE ? 'deadline' : 'canceled'
  }
}

const DEFAULT_BACKOFF = new Backoff()

/**
 * `retry` gave up. `reason` says why: `'attempts'`, `'deadline'` (the
 * context's time ran out, or what is left cannot fit another attempt) or
 * `'canceled'`; `attempts` is how many ran, `lastError` the last attempt's
 * error (undefined if none ran), and `cause` what made it give up: the
 * cancellation's cause, the context's `DeadlineExceeded`, or else the last
 * error.
 */
class RetryError extends Error {
  constructor(reason, attempts, lastError, cause) {
    const why = {
      attempts: 'gave up: out of attempts',
      deadline: 'gave up: out of time',
      canceled: `gave up: canceled (${describe(cause)})`,
    }[reason]
    let text = `${why} after ${attempts} attempt(s)`
    if (lastError !== undefined) text += `; last error: ${describe(lastError)}`
    super(text, cause === undefined ? undefined : { cause })
    this.reason = reason
    this.attempts = attempts
    this.lastError = lastError
  }
}
Object.defineProperty(RetryError.prototype, 'name', { value: 'RetryError', writable: true, configurable: true })

/** An error that says the context ended the operation (what fetch, timers and streams reject with). */
function endedByContext(ctx, e) {
  return ctx.isDone() && (e instanceof ContextError || e?.name === 'AbortError' || e?.name === 'TimeoutError')
}

/**
 * Calls `fn(attempt)` (attempt from 1; the context is `current()` in it)
 * until its promise resolves, rejects with an error `retryable(error)` does
 * not accept (rejected as is), or `backoff` gives up (`RetryError`). One
 * budget, `ctx`'s, covers every attempt and wait; the wait between
 * attempts ends the moment `ctx` is done. Give each attempt `ctx.signal`,
 * so that it stops with the context too.
 */
async function retry(ctx, fn, options = {}) {
  handle(ctx, 'retry')
  if (typeof fn !== 'function') throw invalidArg(`polyctx.retry: fn must be a function, got ${typeName(fn)}`)
  const { retryable, backoff } = options ?? {}
  if (typeof retryable !== 'function') {
    throw invalidArg(
      `polyctx.retry: options.retryable must be a function saying which errors to retry, got ${typeName(retryable)}`,
    )
  }
  const rules = backoff === undefined ? DEFAULT_BACKOFF : backoff instanceof Backoff ? backoff : new Backoff(backoff)
  let attempts = 0
  let lastError
  for (;;) {
    const next = rules.next(ctx, attempts)
    if (typeof next === 'string') throw giveUp(ctx, next, attempts, lastError)
    if (next > 0) {
      try {
        await sleep(ctx, next)
      } catch {
        continue // done while waiting: `next` says why
      }
    }
    attempts++
    try {
      return await currentStore.run(ctx, fn, attempts)
    } catch (e) {
      if (endedByContext(ctx, e)) continue
      if (!retryable(e)) throw e
      lastError = e
    }
  }
}

function giveUp(ctx, reason, attempts, lastError) {
  let why = lastError
  if (reason === 'canceled') why = cause(ctx)
  else if (reason === 'deadline' && ctx.isDone()) why = ctx.err()
  return new RetryError(reason, attempts, lastError, why)
}

module.exports = { Group, group, Backoff, RetryError, retry, sleep, waitFor }
