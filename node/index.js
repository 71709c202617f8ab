'use strict'
// polyctx for Node: Go's context (cancellation trees, deadlines, causes,
// request values) from polyctx's Rust core, mapped onto AbortSignal.
//
// This file only translates: JS values, errors and the event loop. Every
// rule of the model (what is done when, which cause wins, which deadline
// applies, where a value is found) is the core's, reached through the
// napi-rs module in native.js. See the README's Node section for the user's view.
//
// Memory. A Context wrapper owns one native handle (a number in a private
// field), freed by a FinalizationRegistry. Nothing on the parent's side
// refers to a child: the core holds children weakly, and so does this file.
// A context asked for `signal` owns an AbortController; the core reports the
// context done to the JS thread (`dispatch` below), which finds the
// controller through a WeakRef. The signal keeps its controller alive, so
// a signal somebody still listens to always aborts; once neither the signal
// nor the context is reachable, a finalizer stops the core's registration.
//
// JS values the core holds (request values, causes) live in `held` under
// ids; the core stores the ids and reports each one when the last context
// using it is gone, on whatever thread that happens.

const { getEventListeners } = require('node:events')
const native = loadNative()

// The native module is built when the package is installed
// (scripts/install.js). Without it, napi's loader blames npm's optional
// dependencies; say what is actually missing.
function loadNative() {
  try {
    return require('./native.js')
  } catch (e) {
    const fs = require('node:fs')
    const { binaryName } = require('./scripts/platform.js')
    if (fs.existsSync(require('node:path').join(__dirname, binaryName()))) throw e
    throw new Error(
      `polyctx: the native module ${binaryName()} is missing from ${__dirname}. ` +
        'It is built from source when the package is installed, which needs Rust (https://rustup.rs); ' +
        'if the install skipped it (--ignore-scripts) or failed, run `npm rebuild polyctx` and read its output.',
      { cause: e },
    )
  }
}


// Node 20.4+ defines it (as this registered symbol); polyfill older 20.x.
if (typeof Symbol.dispose !== 'symbol') {
  Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('nodejs.dispose') })
}

// ---------------------------------------------------------------------------
// Errors

/** The error of a done context: `Canceled` or `DeadlineExceeded`. */
class ContextError extends Error {
  constructor(message, options) {
    super(message, options)
  }

  /** Go's `Timeout()`: true for `DeadlineExceeded`. */
  get timeout() {
    return false
  }
}
named(ContextError, 'ContextError')

/** The context was canceled (Go's `context.Canceled`); `name` is `'AbortError'`. */
class Canceled extends ContextError {
  constructor(options) {
    super(message('context canceled', options), options)
  }
}
named(Canceled, 'AbortError')

/** The context's deadline passed (Go's `context.DeadlineExceeded`); `name` is `'TimeoutError'`. */
class DeadlineExceeded extends ContextError {
  constructor(options) {
    super(message('context deadline exceeded', options), options)
  }

  get timeout() {
    return true
  }
}
named(DeadlineExceeded, 'TimeoutError')

// Code that checks `reason.name` for 'AbortError'/'TimeoutError' (as for
// the DOMExceptions of AbortController and AbortSignal.timeout) keeps
// working; the prototype's name is what `stack` and `toString` print.
function named(cls, name) {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true })
}

function message(text, options) {
  return options != null && 'cause' in options ? `${text}: ${describe(options.cause)}` : text
}

// The text of a cause and of its own causes, for messages and for the other
// languages, which see causes as text. Never throws: a cause may be any
// value, even a Proxy whose every trap throws.
function describe(cause) {
  let text = ''
  const seen = new Set()
  try {
    for (let c = cause, depth = 0; depth < 8 && !seen.has(c); depth++) {
      seen.add(c)
      text += (depth ? ': ' : '') + textOf(c)
      if (!(c instanceof Error) || !('cause' in c)) break
      c = c.cause
    }
  } catch {
    text += text ? ': …' : '(a cause that cannot be shown)'
  }
  return text
}

function textOf(value) {
  if (value instanceof Error) return String(value.message)
  try {
    return String(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

// The errors made here carry no stack, like Go's: they are made where a
// cancellation happens to be noticed (often the event loop), and a stack
// capture would cost more than the whole cancellation.
function makeError(code, cause) {
  const options = cause === NO_CAUSE ? undefined : { cause }
  const limit = Error.stackTraceLimit
  if (!trySetStackTraceLimit(0)) return code === 2 ? new DeadlineExceeded(options) : new Canceled(options)
  try {
    return code === 2 ? new DeadlineExceeded(options) : new Canceled(options)
  } finally {
    trySetStackTraceLimit(limit)
  }
}

// False where the intrinsics are frozen.
function trySetStackTraceLimit(n) {
  try {
    Error.stackTraceLimit = n
    return true
  } catch {
    return false
  }
}

const NO_CAUSE = Symbol('no cause')

// A cause as the native module reports it (see node/src/events.rs): a
// held id, -1/-2 for the context's own error, or the text of a cause given
// in another language (a string, or its number in `texts` from a drain).
function causeOf(repr, texts) {
  if (typeof repr === 'string') return new Error(repr)
  if (repr > 0) return held.get(repr)
  if (repr <= -3) return new Error(texts.get(repr))
  return NO_CAUSE
}

// ---------------------------------------------------------------------------
// Values the core holds for JS

const held = new Map()
let lastHeld = 0

function hold(value) {
  held.set(++lastHeld, value)
  return lastHeld
}

// ---------------------------------------------------------------------------
// Events from the core (node/src/events.rs). The native module writes
// [id, err, cause] triples into `events`: err 1 or 2 for a watch whose
// context is done, 0 for a held id no context uses any more. Handled on this
// thread only: right after the native call that cancelled returns, or from
// the event loop (`dispatch`) when another thread did.

const events = new Float64Array(3 * 1024)
const watchers = new Map() // id -> AbortController | WeakRef<AbortController> | after-func
let lastWatch = 0

function dispatch(n = native.drain()) {
  for (; n !== 0; n = native.drain()) handleEvents(n)
}

function handleEvents(n) {
  // A copy: an abort listener that cancels more contexts drains into `events` again.
  const items = events.slice(0, 3 * n)
  let texts = null
  for (let i = 2; i < items.length; i += 3) {
    if (items[i] <= -3) (texts ??= new Map()).set(items[i], native.causeText(-3 - items[i]))
  }
  let lastCode = 0
  let lastCause = 0
  let reason
  for (let i = 0; i < items.length; i += 3) {
    const id = items[i]
    const code = items[i + 1]
    if (code === 0) {
      held.delete(id)
      continue
    }
    let watcher = watchers.get(id)
    if (watcher === undefined) continue
    watchers.delete(id)
    if (typeof watcher === 'function') {
      queueMicrotask(watcher) // Go: asynchronously, once
      continue
    }
    if (watcher instanceof WeakRef) watcher = watcher.deref()
    if (watcher === undefined || watcher.signal.aborted) continue
    // One cancellation reaches many contexts with the same error and cause:
    // they share one reason.
    if (code !== lastCode || items[i + 2] !== lastCause || reason === undefined) {
      lastCode = code
      lastCause = items[i + 2]
      reason = makeError(code, causeOf(lastCause, texts))
    }
    watcher.abort(reason)
  }
}

native.init(() => dispatch(), events)

// Native handles of collected wrappers. Freeing one may release held values,
// which are drained once per batch of finalizers.
let drainQueued = false
function drainReleased() {
  drainQueued = false
  dispatch()
}
const handles = new FinalizationRegistry((h) => {
  const watch = native.release(h)
  if (watch !== 0) weaken(watch)
  if (!drainQueued) {
    drainQueued = true
    queueMicrotask(drainReleased)
  }
})

// A context's signal is watched through a strong entry while its wrapper
// lives (the cheap, common case: the context is done before it is dropped).
// When the wrapper goes first, the signal may still be in use, and must
// still abort. If it has abort listeners (a pending done(), a socket to
// destroy), they are waiting for it: it stays watched until the context is
// done, as Node keeps AbortSignal.timeout's signals that have listeners.
// Otherwise the signal keeps its controller alive from now on (a pending
// fetch holds the signal), the entry holds the controller weakly, and once
// nothing reaches the controller the watch is stopped.
function weaken(id) {
  const controller = watchers.get(id)
  if (!(controller instanceof AbortController) || controller.signal.aborted) return
  if (getEventListeners(controller.signal, 'abort').length !== 0) return
  new SignalLink(controller.signal, controller)
  watchers.set(id, new WeakRef(controller))
  controllers.register(controller, id)
}

const controllers = new FinalizationRegistry((id) => {
  watchers.delete(id)
  native.unwatch(id)
})

// Gives a signal a private link to its controller (the base returns the
// signal itself, and the field is stamped onto it).
class SignalLink extends function (target) {
  return target
} {
  #controller
  constructor(signal, controller) {
    super(signal)
    this.#controller = controller
  }
}

// ---------------------------------------------------------------------------
// Contexts

const CREATE = Symbol('polyctx.create')
let handleOf
let isContext

/**
 * A request's cancellation signal, deadline and values (Go's
 * `context.Context`). Made by `background()`, `todo()` and the `with*`
 * functions, never with `new`.
 */
class Context {
  #h
  #controller = null
  #err = null
  #done = null

  constructor(token, h) {
    if (token !== CREATE) {
      throw new TypeError('polyctx: contexts come from background(), todo() and the with* functions')
    }
    this.#h = h
    handles.register(this, h)
  }

  static {
    handleOf = (ctx) => ctx.#h
    isContext = (x) => typeof x === 'object' && x !== null && #h in x
  }

  /** `null` while live; once done, a `Canceled` or `DeadlineExceeded` whose `cause` is the context's cause. */
  err() {
    if (this.#err !== null) return this.#err
    const code = native.err(this.#h)
    if (code === 0) return null
    const signal = this.#controller?.signal
    if (signal?.aborted) {
      this.#err = signal.reason
    } else {
      this.#err = makeError(code, causeOf(native.cause(this.#h)))
      // Done on another thread, and the event loop has not told the signal
      // yet: tell it now, so that JS never sees a done context with a live signal.
      this.#controller?.abort(this.#err)
    }
    return this.#err
  }

  /** True once the context is done. */
  isDone() {
    if (this.#err !== null) return true
    if (!native.isDone(this.#h)) return false
    if (this.#controller !== null) this.err() // see err()
    return true
  }

  /** When the context will be done by itself, or `null`. */
  deadline() {
    const ms = native.deadline(this.#h)
    return ms === null ? null : new Date(ms)
  }

  /** The value stored under `key` by the nearest `withValue`, or `undefined`. */
  value(key) {
    const id = native.value(this.#h, keyHandle(key, 'value'))
    return id === 0 ? undefined : held.get(id)
  }

  /** An AbortSignal that aborts when the context is done, with `err()` as its reason. */
  get signal() {
    if (this.#controller === null) {
      const controller = new AbortController()
      this.#controller = controller
      if (this.#err !== null || native.isDone(this.#h)) {
        controller.abort(this.err())
      } else {
        const id = ++lastWatch
        watchers.set(id, controller)
        const n = native.watch(this.#h, id, true)
        if (n !== 0) dispatch(n)
      }
    }
    return this.#controller.signal
  }

  /**
   * A promise that resolves (to undefined) once the context is done; never
   * rejects. While it waits on a context with a deadline, it keeps the
   * process alive as a timer for that deadline would.
   */
  done() {
    if (this.#done === null) {
      if (this.isDone()) {
        this.#done = Promise.resolve()
      } else {
        const signal = this.signal
        const holds = native.deadline(this.#h) !== null
        if (holds) native.holdLoop(1)
        this.#done = new Promise((resolve) =>
          signal.addEventListener(
            'abort',
            () => {
              if (holds) native.holdLoop(-1)
              resolve()
            },
            { once: true },
          ),
        )
      }
    }
    return this.#done
  }

  /** Go's `String()`, e.g. `context.Background.WithCancel`. */
  toString() {
    return native.describe(this.#h)
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Context<${this.toString()}>`
  }
}

function handle(parent, fn) {
  if (!isContext(parent)) {
    throw invalidArg(`polyctx.${fn}: parent must be a Context, got ${typeName(parent)}`)
  }
  return handleOf(parent)
}

function wrap(h) {
  return new Context(CREATE, h)
}

function cancelFunc(ctx) {
  const cancel = () => {
    const n = native.cancel(handleOf(ctx))
    if (n !== 0) dispatch(n)
  }
  cancel[Symbol.dispose] = cancel
  return cancel
}

function cancelCauseFunc(ctx) {
  const cancel = (cause) => {
    const h = handleOf(ctx)
    const n =
      cause === undefined || cause === null || native.isDone(h)
        ? native.cancelCause(h, 0, null) // Go's cancel(nil); a no-op when done
        : native.cancelCause(h, hold(cause), describe(cause))
    if (n !== 0) dispatch(n)
  }
  cancel[Symbol.dispose] = () => cancel()
  return cancel
}

let backgroundCtx = null
let todoCtx = null

/** The root of every tree: never done, no deadline, no values. */
function background() {
  return (backgroundCtx ??= wrap(native.background()))
}

/** A placeholder root for code not yet given a context; behaves like `background()`. */
function todo() {
  return (todoCtx ??= wrap(native.todo()))
}

/** A child done when `cancel()` is called or `parent` is done. */
function withCancel(parent) {
  const ctx = wrap(native.withCancel(handle(parent, 'withCancel')))
  return [ctx, cancelFunc(ctx)]
}

/** Like `withCancel`, and `cancel(cause)` records any value as the cause. */
function withCancelCause(parent) {
  const ctx = wrap(native.withCancelCause(handle(parent, 'withCancelCause')))
  return [ctx, cancelCauseFunc(ctx)]
}

/** A child also done `ms` milliseconds from now, with `cause` as its cause then. */
function withTimeout(parent, ms, cause) {
  const h = handle(parent, 'withTimeout')
  if (typeof ms !== 'number') {
    throw invalidArg(`polyctx.withTimeout: ms must be a number of milliseconds, got ${typeName(ms)}`)
  }
  if (!(ms >= 0 && ms < Infinity)) {
    throw outOfRange(`polyctx.withTimeout: ms must be finite and >= 0, got ${ms}`)
  }
  const [id, text] = causeArgs(cause)
  const ctx = wrap(native.withTimeout(h, ms, id, text))
  return [ctx, cancelFunc(ctx)]
}

/** A child also done at `deadline` (a Date or epoch milliseconds), with `cause` as its cause then. */
function withDeadline(parent, deadline, cause) {
  const h = handle(parent, 'withDeadline')
  let ms = deadline
  if (deadline instanceof Date) {
    ms = deadline.getTime()
  } else if (typeof deadline !== 'number') {
    throw invalidArg(`polyctx.withDeadline: deadline must be a Date or epoch milliseconds, got ${typeName(deadline)}`)
  }
  if (!Number.isFinite(ms)) {
    throw outOfRange(`polyctx.withDeadline: deadline must be a valid time, got ${String(deadline)}`)
  }
  const [id, text] = causeArgs(cause)
  const ctx = wrap(native.withDeadline(h, ms, id, text))
  return [ctx, cancelFunc(ctx)]
}

function causeArgs(cause) {
  return cause === undefined || cause === null ? [0, null] : [hold(cause), describe(cause)]
}

let keyHandleOf
let isKey

/** A key for `withValue`, unique by identity; `name` is for display only. */
class Key {
  #h

  constructor(token, name) {
    if (token !== CREATE) throw new TypeError('polyctx: keys come from createKey(name)')
    this.name = name
    this.#h = native.createKey(name)
    keys.register(this, this.#h)
    Object.freeze(this)
  }

  static {
    keyHandleOf = (key) => key.#h
    isKey = (x) => typeof x === 'object' && x !== null && #h in x
  }

  toString() {
    return `Key(${this.name})`
  }
}
const keys = new FinalizationRegistry((k) => native.releaseKey(k))

function keyHandle(key, fn) {
  if (!isKey(key)) throw invalidArg(`polyctx.${fn}: key must come from createKey(), got ${typeName(key)}`)
  return keyHandleOf(key)
}

/** A new key, distinct from every other, even one with the same name. */
function createKey(name) {
  if (typeof name !== 'string') throw invalidArg(`polyctx.createKey: name must be a string, got ${typeName(name)}`)
  return new Key(CREATE, name)
}

/** A child carrying `value` (any JS value) under `key`. */
function withValue(parent, key, value) {
  const h = handle(parent, 'withValue')
  return wrap(native.withValue(h, keyHandle(key, 'withValue'), hold(value)))
}

/** A child that keeps `parent`'s values but is never done: no deadline, no error. */
function withoutCancel(parent) {
  return wrap(native.withoutCancel(handle(parent, 'withoutCancel')))
}

/** Why `ctx` is done: the cause given to the first cancellation, else `ctx.err()`; `null` while live. */
function cause(ctx) {
  const h = handle(ctx, 'cause')
  const repr = native.cause(h)
  if (repr === null) return null
  const c = causeOf(repr)
  return c === NO_CAUSE ? ctx.err() : c
}

/**
 * Calls `fn` once, on this thread, after `ctx` is done (at once, but still
 * asynchronously, if it is). `stop()` returns true if it kept `fn` from being
 * started, false if `fn` has been started or was already stopped.
 */
function afterFunc(ctx, fn) {
  const h = handle(ctx, 'afterFunc')
  if (typeof fn !== 'function') throw invalidArg(`polyctx.afterFunc: fn must be a function, got ${typeName(fn)}`)
  const id = ++lastWatch
  // An after-func is held strongly until it runs or is stopped, as in Go.
  watchers.set(id, () => fn())
  const n = native.watch(h, id, false)
  if (n !== 0) dispatch(n)
  return function stop() {
    const stopped = native.unwatch(id)
    if (stopped) watchers.delete(id)
    return stopped
  }
}

/**
 * A context that is done when `signal` aborts, with the signal's reason as
 * its cause, or when `parent` is done. Call `cancel()` when the work is over:
 * until the context is done, `signal` holds it.
 */
function fromSignal(signal, parent = background()) {
  if (!(signal instanceof AbortSignal)) {
    throw invalidArg(`polyctx.fromSignal: signal must be an AbortSignal, got ${typeName(signal)}`)
  }
  handle(parent, 'fromSignal')
  const [ctx, cancel] = withCancelCause(parent)
  if (signal.aborted) {
    cancel(signal.reason)
  } else {
    const onAbort = () => cancel(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    afterFunc(ctx, () => signal.removeEventListener('abort', onAbort))
  }
  return [ctx, cancel]
}

// ---------------------------------------------------------------------------
// Argument errors, in Node's style

function invalidArg(text) {
  const e = new TypeError(text)
  e.code = 'ERR_INVALID_ARG_TYPE'
  return e
}

function outOfRange(text) {
  const e = new RangeError(text)
  e.code = 'ERR_OUT_OF_RANGE'
  return e
}

function typeName(x) {
  if (x === null) return 'null'
  if (typeof x === 'object') return `an instance of ${x.constructor?.name ?? 'Object'}`
  if (typeof x === 'string') return `string ${JSON.stringify(x.length > 20 ? x.slice(0, 20) + '…' : x)}`
  if (typeof x === 'function') return 'a function'
  return `${typeof x} ${String(x)}`
}

module.exports = {
  background,
  todo,
  withCancel,
  withCancelCause,
  withTimeout,
  withDeadline,
  withValue,
  withoutCancel,
  createKey,
  afterFunc,
  cause,
  fromSignal,
  Context,
  Key,
  ContextError,
  Canceled,
  DeadlineExceeded,
}

// Test hooks (node/test, with POLYCTX_TEST_HOOKS=1 only): what no user may
// do, since it cancels a context without its cancel function.
if (process.env.POLYCTX_TEST_HOOKS === '1') {
  module.exports[Symbol.for('polyctx.test')] = {
    /** Cancels from a new native thread, as a deadline or C code would. */
    cancelFromThread: (ctx, text) => native.cancelFromThread(handleOf(ctx), text ?? null),
  }
}
