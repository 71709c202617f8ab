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
// When a worker exits, the native side frees whatever handles it still has.
//
// JS values the core holds (request values, causes) live in `held` under
// ids; the core stores the ids and reports each one when the last context
// using it is gone, on whatever thread that happens.
//
// The numbers the native module and this file exchange besides handles and
// held ids (error codes, event codes, cause markers) are named once, in
// node/src/protocol.rs, and read from the module here.

const { getEventListeners } = require('node:events')
const native = loadNative()
const {
  NO_HANDLE,
  ERR_NONE,
  ERR_DEADLINE_EXCEEDED,
  EVENT_SIZE,
  EVENT_RELEASE,
  CAUSE_IS_ERR,
  CAUSE_TEXT,
} = native

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

// The text, then the cause chain; a cause that already says the same (a
// `Canceled` given to `cancel`) is not said twice.
function message(text, options) {
  if (options == null || !('cause' in options)) return text
  const chain = describe(options.cause)
  return chain === text || chain.startsWith(`${text}: `) ? chain : `${text}: ${chain}`
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
      // A context error's message already carries its cause chain.
      if (!(c instanceof Error) || c instanceof ContextError || !('cause' in c)) break
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
// capture would cost more than the whole cancellation. Each context gets
// its own error object, as each AbortController gets its own reason: code
// that decorates one (or rewrites its stack, as fetch does) changes no other.
function makeError(code, cause) {
  const options = cause === NO_CAUSE ? undefined : { cause }
  return code === ERR_DEADLINE_EXCEEDED ? new DeadlineExceeded(options) : new Canceled(options)
}

function withoutStacks(fn) {
  const limit = Error.stackTraceLimit
  if (!trySetStackTraceLimit(0)) return fn()
  try {
    return fn()
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
// held id, CAUSE_IS_ERR, or the text of a cause given in another language
// or JS environment (a string, or CAUSE_TEXT - k in an event).
function causeOf(repr, texts) {
  if (typeof repr === 'string') return new Error(repr)
  if (repr > 0) return held.get(repr)
  if (repr <= CAUSE_TEXT) return new Error(texts.get(repr))
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
// [id, code, cause] events into `events`: code is the error of a watch's
// context that is done, or EVENT_RELEASE for a held id no context uses any
// more. Handled on this thread only: right after the native call that
// cancelled returns, or from the event loop (`dispatch`) when another
// thread did.

const events = new Float64Array(EVENT_SIZE * 1024)
const watchers = new Map() // id -> AbortController | WeakRef<AbortController> | after-func
let lastWatch = 0

function dispatch(n = native.drain()) {
  for (; n !== 0; n = native.drain()) handleEvents(n)
}

function handleEvents(n) {
  // A copy: an abort listener that cancels more contexts drains into `events` again.
  const items = events.slice(0, EVENT_SIZE * n)
  let texts = null
  for (let i = 2; i < items.length; i += EVENT_SIZE) {
    if (items[i] <= CAUSE_TEXT) (texts ??= new Map()).set(items[i], native.causeText(CAUSE_TEXT - items[i]))
  }
  // Made first and aborted after, so that no abort listener runs with the
  // stack trace limit lowered.
  const aborts = []
  withoutStacks(() => {
    for (let i = 0; i < items.length; i += EVENT_SIZE) {
      const id = items[i]
      const code = items[i + 1]
      if (code === EVENT_RELEASE) {
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
      aborts.push(watcher, makeError(code, causeOf(items[i + 2], texts)))
    }
  })
  for (let i = 0; i < aborts.length; i += 2) aborts[i].abort(aborts[i + 1])
}

native.init(() => dispatch(), events)
// When a worker exits, the native side frees every context it still holds;
// when the process exits, there is no need.
if (require('node:worker_threads').isMainThread) process.once('exit', () => native.processExiting())

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

// What keeps what alive beyond the objects' own fields: `keepAlive.set(a,
// b)` keeps b alive as long as a is reachable, and adds nothing to a. (Its
// table keeps the capacity of its busiest moment: about 12 bytes per signal
// that was alive at once, reused afterwards.)
const keepAlive = new WeakMap()

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
  keepAlive.set(controller.signal, controller)
  watchers.set(id, new WeakRef(controller))
  controllers.register(controller, id)
}

const controllers = new FinalizationRegistry((id) => {
  watchers.delete(id)
  native.unwatch(id)
})

// Structured clone (postMessage, workerData, structuredClone) copies an
// object's own enumerable string-keyed properties and nothing else, so a
// context or key would arrive as an empty object. Each has this one, whose
// getter makes the clone throw at the send instead. JSON.stringify skips it.
const NOT_CLONEABLE = Object.freeze({
  get polyctx() {
    throw new DOMException(
      'polyctx: a Context or Key cannot be cloned or sent to another thread; it belongs to the JS thread ' +
        'that made it. To cancel work in a worker, send util.transferableAbortSignal(ctx.signal) in the ' +
        "transfer list and call fromSignal() on it there (and the deadline, if any, as ctx.deadline()).",
      'DataCloneError',
    )
  },
  toJSON() {
    return undefined
  },
})

// ---------------------------------------------------------------------------
// Contexts

const CREATE = Symbol('polyctx.create')
let handleOf
let linkOf
let isContext

/**
 * A request's cancellation signal, deadline and values (Go's
 * `context.Context`). Made by `background()`, `todo()` and the `with*`
 * functions, never with `new`.
 */
class Context {
  #h
  // The signal link of the nearest fromSignal() ancestor, or null: every
  // context (and signal, and after-func) under it keeps it alive.
  #link
  #controller = null
  #err = null
  #done = null
  polyctxCloneGuard = NOT_CLONEABLE

  constructor(token, h, link) {
    if (token !== CREATE) {
      throw new TypeError('polyctx: contexts come from background(), todo() and the with* functions')
    }
    this.#h = h
    this.#link = link
    handles.register(this, h)
  }

  static {
    handleOf = (ctx) => ctx.#h
    linkOf = (ctx) => ctx.#link
    isContext = (x) => typeof x === 'object' && x !== null && #h in x
  }

  /** `null` while live; once done, a `Canceled` or `DeadlineExceeded` whose `cause` is the context's cause. */
  err() {
    if (this.#err !== null) return this.#err
    const code = native.err(this.#h)
    if (code === ERR_NONE) return null
    const signal = this.#controller?.signal
    if (signal?.aborted) {
      this.#err = signal.reason
    } else {
      this.#err = withoutStacks(() => makeError(code, causeOf(native.cause(this.#h))))
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
        if (this.#link !== null) keepAlive.set(controller, this.#link)
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
   * rejects. Like the signal, it does not keep the process alive.
   */
  done() {
    if (this.#done === null) {
      if (this.isDone()) {
        this.#done = Promise.resolve()
      } else {
        const signal = this.signal
        this.#done = new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
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

function wrap(h, link) {
  return new Context(CREATE, h, link)
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
  const cancel = (cause) => cancelWithCause(handleOf(ctx), cause)
  cancel[Symbol.dispose] = () => cancel()
  return cancel
}

function cancelWithCause(h, cause) {
  const n =
    cause === undefined || cause === null || native.isDone(h)
      ? native.cancelCause(h, 0, null) // Go's cancel(nil); a no-op when done
      : native.cancelCause(h, hold(cause), describe(cause))
  if (n !== 0) dispatch(n)
}

let backgroundCtx = null
let todoCtx = null

/** The root of every tree: never done, no deadline, no values. */
function background() {
  return (backgroundCtx ??= wrap(native.background(), null))
}

/** A placeholder root for code not yet given a context; behaves like `background()`. */
function todo() {
  return (todoCtx ??= wrap(native.todo(), null))
}

/** A child done when `cancel()` is called or `parent` is done. */
function withCancel(parent) {
  const ctx = wrap(native.withCancel(handle(parent, 'withCancel')), linkOf(parent))
  return [ctx, cancelFunc(ctx)]
}

/** Like `withCancel`, and `cancel(cause)` records any value as the cause. */
function withCancelCause(parent) {
  const ctx = wrap(native.withCancelCause(handle(parent, 'withCancelCause')), linkOf(parent))
  return [ctx, cancelCauseFunc(ctx)]
}

/**
 * A child also done `ms` milliseconds from now (already, if `ms` <= 0), with
 * `cause` as its cause then.
 */
function withTimeout(parent, ms, cause) {
  const h = handle(parent, 'withTimeout')
  if (typeof ms !== 'number') {
    throw invalidArg(`polyctx.withTimeout: ms must be a number of milliseconds, got ${typeName(ms)}`)
  }
  const [id, text] = causeArgs(cause)
  const child = native.withTimeout(h, ms, id, text)
  if (child === NO_HANDLE) {
    held.delete(id)
    throw outOfRange(`polyctx.withTimeout: ms must be a valid duration, got ${ms} (${native.durationError(ms)})`)
  }
  const ctx = wrap(child, linkOf(parent))
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
  const child = native.withDeadline(h, ms, id, text)
  if (child === NO_HANDLE) {
    held.delete(id)
    const why = native.durationError(ms - Date.now()) ?? 'too far ahead'
    throw outOfRange(`polyctx.withDeadline: deadline is too far ahead, got ${String(deadline)} (${why})`)
  }
  const ctx = wrap(child, linkOf(parent))
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
    this.polyctxCloneGuard = NOT_CLONEABLE
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
  return wrap(native.withValue(h, keyHandle(key, 'withValue'), hold(value)), linkOf(parent))
}

/** A child that keeps `parent`'s values but is never done: no deadline, no error. */
function withoutCancel(parent) {
  return wrap(native.withoutCancel(handle(parent, 'withoutCancel')), null)
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
  const run = () => fn()
  const link = linkOf(ctx)
  if (link !== null) keepAlive.set(run, link)
  watchers.set(id, run)
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
 * its cause, or when `parent` is done. `cancel()` cancels it and stops
 * listening to the signal at once; a context dropped without it is let go
 * once nothing can observe it.
 */
function fromSignal(signal, parent = background()) {
  if (!(signal instanceof AbortSignal)) {
    throw invalidArg(`polyctx.fromSignal: signal must be an AbortSignal, got ${typeName(signal)}`)
  }
  const h = native.withCancelCause(handle(parent, 'fromSignal'))
  if (signal.aborted || native.isDone(h)) {
    const ctx = wrap(h, linkOf(parent))
    const cancel = cancelCauseFunc(ctx)
    if (signal.aborted) cancel(signal.reason)
    return [ctx, cancel]
  }
  // The link cancels through its own handle: it must not keep the
  // context's wrapper alive (the wrapper's signal keeps the link alive).
  const link = { h: native.duplicate(h), parent: linkOf(parent) }
  handles.register(link, link.h)
  const ctx = wrap(h, link)
  const cancel = cancelCauseFunc(ctx)
  let source = sources.get(signal)
  if (source === undefined) sources.set(signal, (source = new SignalSource(signal)))
  const ref = source.add(link)
  const stop = (cause) => {
    source.remove(ref)
    cancel(cause)
  }
  stop[Symbol.dispose] = () => stop()
  return [ctx, stop]
}

// fromSignal() adds one abort listener to a signal, however many contexts
// come from it (say a server-wide shutdown signal and a context per
// request; Node warns from the 11th listener on). The signal's source holds
// each derived context's link weakly. A link, { h, parent }, is kept
// alive by every context under the derived one (their #link), and by their
// signals and after-funcs (keepAlive): so a derived context that nothing
// can observe any more is let go, and a source with no contexts left stops
// listening, whether or not anybody called cancel().
const sources = new WeakMap() // AbortSignal -> SignalSource

class SignalSource {
  #signal // a WeakRef: a source never keeps its signal alive
  #links = new Set() // WeakRefs
  #onAbort = () => this.#abort()

  constructor(signal) {
    this.#signal = new WeakRef(signal)
    signal.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** Registers a link; returns the token for `remove`. */
  add(link) {
    const ref = new WeakRef(link)
    this.#links.add(ref)
    collectedLinks.register(link, { source: this, ref }, ref)
    return ref
  }

  remove(ref) {
    if (!this.#links.delete(ref)) return
    collectedLinks.unregister(ref)
    if (this.#links.size !== 0) return
    const signal = this.#signal.deref()
    if (signal !== undefined) {
      signal.removeEventListener('abort', this.#onAbort)
      sources.delete(signal)
    }
  }

  #abort() {
    const signal = this.#signal.deref() // the signal is dispatching: alive
    sources.delete(signal)
    const refs = [...this.#links]
    this.#links.clear()
    for (const ref of refs) {
      collectedLinks.unregister(ref)
      const link = ref.deref()
      if (link !== undefined) cancelWithCause(link.h, signal.reason)
    }
  }
}

const collectedLinks = new FinalizationRegistry(({ source, ref }) => source.remove(ref))

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
// do, since it cancels a context without its cancel function, and what the
// leak tests count.
if (process.env.POLYCTX_TEST_HOOKS === '1') {
  module.exports[Symbol.for('polyctx.test')] = {
    /** Cancels from a new native thread, as a deadline or C code would. */
    cancelFromThread: (ctx, text) => native.cancelFromThread(handleOf(ctx), text ?? null),
    /**
     * What is live: native context and key handles, watches and armed
     * deadlines (process-wide: every thread's), and this thread's held JS
     * values and watchers.
     */
    liveCounts: () => ({ ...native.liveCounts(), held: held.size, watchers: watchers.size }),
  }
}
