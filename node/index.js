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
const { AsyncLocalStorage } = require('node:async_hooks')
const internal = require('./internal.js')
const native = loadNative()
const {
  NO_HANDLE,
  ERR_NONE,
  ERR_DEADLINE_EXCEEDED,
  EVENT_SIZE,
  EVENT_RELEASE,
  CAUSE_IS_ERR,
  CAUSE_REASON,
  CAUSE_TEXT,
} = native

// The native module comes from the platform package, or is built from source
// when a checkout is installed. Without it, napi's loader blames npm's
// optional dependencies; scripts/platform.js says what is actually missing.
function loadNative() {
  try {
    return require('./native.js')
  } catch (e) {
    throw require('./scripts/platform.js').loadError(__dirname, e)
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
// held id, CAUSE_IS_ERR, an end reason (CAUSE_REASON - i), or the text of
// a cause given in another language or JS environment (a string, or
// CAUSE_TEXT - k in an event).
function causeOf(repr, texts) {
  if (typeof repr === 'string') return new Error(repr)
  if (repr > 0) return held.get(repr)
  if (repr <= CAUSE_TEXT) return new Error(texts.get(repr))
  if (repr <= CAUSE_REASON) return reasonCause(CAUSE_REASON - repr)
  return NO_CAUSE
}

// ---------------------------------------------------------------------------
// End reasons: why a request's context ended, across services. The table
// (names, messages, gRPC/Connect/HTTP codes) is the core's, read once.

/**
 * Why a request's context ended: Go's two errors, and client disconnected,
 * peer canceled, server shutdown, request finished. One frozen instance per
 * reason; cancel a request's context with one (`cancel(EndReason.serverShutdown)`)
 * and it becomes the context's cause, in every language.
 */
class EndReason extends Error {
  constructor(token, row, index) {
    if (token !== CREATE) throw new TypeError('polyctx: the end reasons are EndReason.canceled, .clientDisconnected, ...')
    super(row.message)
    /** The stable lowercase name, the same in every language (`'client_disconnected'`). */
    this.reason = row.name
    /** The gRPC status code. */
    this.grpcCode = row.grpcCode
    /** The Connect error code. */
    this.connectCode = row.connectCode
    /** The HTTP status: 499, 503 or 504. */
    this.httpStatus = row.httpStatus
    reasonIndex.set(this, index)
  }

  /** Why `ctx` ended, or `null` while it is live. */
  static of(ctx) {
    const i = native.endReason(handle(ctx, 'EndReason.of'))
    return i === null ? null : END_REASONS[i]
  }
}
named(EndReason, 'EndReason')
const reasonIndex = new WeakMap()
const CREATE = Symbol('polyctx.create')
const END_REASONS = Object.freeze(
  withoutStacks(() => native.endReasons().map((row, i) => Object.freeze(new EndReason(CREATE, row, i)))),
)
for (const r of END_REASONS) {
  const camel = r.reason.replace(/_(.)/g, (_, c) => c.toUpperCase())
  Object.defineProperty(EndReason, camel, { value: r, enumerable: true })
}
Object.defineProperty(EndReason, 'all', { value: END_REASONS, enumerable: true })

// The cause object of a context canceled with an end reason: the reason
// itself, except for Go's two errors, which are contexts' own errors.
let errorCauses = null
function reasonCause(i) {
  const r = END_REASONS[i]
  if (r === EndReason.canceled || r === EndReason.deadlineExceeded) {
    errorCauses ??= withoutStacks(() => [Object.freeze(new Canceled()), Object.freeze(new DeadlineExceeded())])
    return errorCauses[r === EndReason.canceled ? 0 : 1]
  }
  return r
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
  // A copy: an abort listener that cancels more contexts drains into `events`
  // again. A plain array: a typed array's slice would allocate an
  // ArrayBuffer per dispatch, which costs the collector more than the copy.
  const items = new Array(EVENT_SIZE * n)
  for (let i = 0; i < items.length; i++) items[i] = events[i]
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
  if (onLost !== null) reportLost()
}

// Lost cancels (see debug.js): the native side queues those freed on this
// thread while `onLost` is set, which is where releasing a handle frees them.
let onLost = null
function reportLost() {
  for (const [context, site] of native.takeLostCancels()) {
    const report = Object.freeze({ context, site: site ?? null })
    const fn = onLost
    queueMicrotask(() => fn(report)) // each apart, as after-funcs: one that throws stops no other
  }
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

  /**
   * The value stored under `key` by the nearest `withValue`, or `undefined`.
   * A value stored by C reads as a string (UTF-8 bytes), a Uint8Array
   * (other bytes) or a bigint (a pointer).
   */
  value(key) {
    const v = native.value(this.#h, keyHandle(key, 'value'))
    if (typeof v !== 'number') return v
    return v === 0 ? undefined : held.get(v)
  }

  /**
   * A new `ctx_t*` for this context, as a bigint, for C code in this
   * process (see `cLibrary()`): it owns one reference, which C releases
   * with `ctx_release`. C sees the same context: its cancellation, deadline,
   * cause and values.
   */
  toC() {
    return native.toC(this.#h)
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
  const ctx = new Context(CREATE, h, link)
  if (siteTracking) native.setSite(h, callerSite())
  return ctx
}

// With debug.track() on, each context records the stack frame that made it:
// the first one outside this package's own modules.
let siteTracking = false
const OWN_MODULE = new RegExp(`${__dirname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\\/][^\\/]+\\.js:`)

function callerSite() {
  const limit = Error.stackTraceLimit
  trySetStackTraceLimit(32)
  const stack = new Error().stack
  trySetStackTraceLimit(limit)
  if (typeof stack !== 'string') return 'unknown'
  for (const line of stack.split('\n').slice(1)) {
    const frame = line.trim().replace(/^at /, '')
    if (!OWN_MODULE.test(frame) && !frame.startsWith('node:internal')) return frame
  }
  return 'unknown'
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
  const reason = cause instanceof EndReason ? reasonIndex.get(cause) : undefined
  const n =
    cause === undefined || cause === null || native.isDone(h)
      ? native.cancelCause(h, 0, null) // Go's cancel(nil); a no-op when done
      : reason !== undefined
        ? native.cancelReason(h, reason) // the core's own cause: every language sees the reason
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

  /**
   * A new `ctx_key_t*` for this key (the same key: values stored from JS
   * and from C under it find each other), as a bigint, for C code to
   * release with `ctx_key_release`.
   */
  toC() {
    return native.keyToC(keyHandleOf(this))
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

/**
 * A child carrying `value` (any JS value) under `key`. A string is stored
 * as UTF-8, which C code reads too; other values only JS can read.
 */
function withValue(parent, key, value) {
  const h = handle(parent, 'withValue')
  const k = keyHandle(key, 'withValue')
  const child =
    typeof value === 'string' && value.isWellFormed()
      ? native.withValueText(h, k, value)
      : native.withValue(h, k, hold(value))
  return wrap(child, linkOf(parent))
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
// C in the same process

/**
 * The path of the shared library that exports polyctx's C ABI (`ctx_*` of
 * include/ctx.h) in this process: this package's native module. Its
 * symbols are made global, so a C addon or FFI library loaded after this
 * call, built with `ctx_*` left undefined (not linked to a libctx of its
 * own), uses the same core as JS.
 */
let cLibraryPath = null
function cLibrary() {
  return (cLibraryPath ??= native.cLibrary())
}

/** `ctx.toC()`: a new `ctx_t*` (a bigint) owning one reference, for C to release. */
function toC(ctx) {
  return native.toC(handle(ctx, 'toC'))
}

/**
 * The context behind a `ctx_t*` from C (a bigint), with references of its
 * own: the caller still owns, and releases, the handle it passed. With a
 * `ctx_cancel_t*` too, `[ctx, cancel]`, where `cancel` cancels through it
 * (taking a cause if C made it with a `_cause` function). The handles must
 * be live; a dangling pointer crashes the process, as in C.
 */
function fromC(ptr, cancelPtr) {
  if (typeof ptr !== 'bigint') throw invalidArg(`polyctx.fromC: ptr must be a bigint address, got ${typeName(ptr)}`)
  if (cancelPtr !== undefined && typeof cancelPtr !== 'bigint') {
    throw invalidArg(`polyctx.fromC: cancelPtr must be a bigint address, got ${typeName(cancelPtr)}`)
  }
  let h
  try {
    h = native.fromC(ptr, cancelPtr)
  } catch (e) {
    throw outOfRange(`polyctx.fromC: ${e.message}`)
  }
  const ctx = wrap(h, null)
  if (cancelPtr === undefined) return ctx
  return [ctx, native.cancelTakesCause(h) ? cancelCauseFunc(ctx) : cancelFunc(ctx)]
}

// ---------------------------------------------------------------------------
// The current context of asynchronous code

const currentStore = new AsyncLocalStorage()

/**
 * The context that `run()` (or a request middleware) made current for this
 * asynchronous call chain; `background()` outside any.
 */
function current() {
  return currentStore.getStore() ?? background()
}

/** Calls `fn(...args)` with `ctx` as `current()` there and in everything it starts. */
function run(ctx, fn, ...args) {
  handle(ctx, 'run')
  if (typeof fn !== 'function') throw invalidArg(`polyctx.run: fn must be a function, got ${typeName(fn)}`)
  return currentStore.run(ctx, fn, ...args)
}

/**
 * What is live in the native module, process-wide: context handles (JS
 * wrappers not yet collected), key handles, watches (signals and
 * after-funcs waiting for a context) and deadlines armed in the core's timer.
 */
function stats() {
  return native.liveCounts()
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
  current,
  run,
  toC,
  fromC,
  cLibrary,
  stats,
  Context,
  Key,
  ContextError,
  Canceled,
  DeadlineExceeded,
  EndReason,
}

// What the package's other modules (wire, http, grpc, ...) use.
Object.assign(internal, {
  native,
  describe,
  trackSites: (on) => (siteTracking = on),
  onLostCancel: (fn) => (onLost = fn),
  pendingAfterFuncs: () => {
    let n = 0
    for (const w of watchers.values()) if (typeof w === 'function') n++
    return n
  },
  handle,
  handleOf,
  linkOf,
  isContext,
  wrap,
  cancelFunc,
  cancelCauseFunc,
  dispatch,
  makeError,
  withoutStacks,
  invalidArg,
  outOfRange,
  typeName,
  currentStore,
})

// The patterns and diagnostics, and polyctx.wire: loaded after the above, which they use.
Object.assign(module.exports, require('./patterns.js'))
module.exports.debug = require('./debug.js')
Object.defineProperty(module.exports, 'wire', { enumerable: true, get: () => require('./wire.js') })

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
