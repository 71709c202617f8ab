'use strict'
// polyctx's `debug`: the classic context bugs, visible at run time.
//
// - Lost cancels: a cancelable context freed while still live was never
//   canceled and never reached its deadline (its cancel function was
//   dropped uncalled). The core counts them process-wide at no cost;
//   `onLostCancel(fn)` or `warnLostCancels()` reports each one freed on
//   this thread (where the garbage collector frees JS contexts), as a
//   process warning with code POLYCTX_LOST_CANCEL. Off by default.
// - Live contexts: after `track()`, every context made is listed by
//   `snapshot()` until it is freed, with its kind, age, deadline, error and
//   the stack frame that made it, for tests and debug endpoints. Off by
//   default: off, it costs one boolean test per context.
// - What is pending: `liveTimers()`, `pendingAfterFuncs()`.

const internal = require('./internal.js')
const { native, handle, invalidArg, typeName } = internal

/** The tracked contexts alive at one instant, oldest first; `toString()` is the tree. */
class Snapshot {
  #text

  constructor({ contexts, text }) {
    /** `{ id, parent, kind, ageMs, deadlineInMs, err, site }` each; `err` is Go's text or null. */
    this.contexts = Object.freeze(contexts.map((c) => Object.freeze({ ...c, parent: c.parent ?? null })))
    this.#text = text
    Object.freeze(this)
  }

  /**
   * The cancelable contexts (WithCancel, WithDeadline) not yet done: what a
   * test expects none of once its work is over. (A WithValue or
   * WithoutCancel context is done only through its parent, which is listed
   * if it is one of these.)
   */
  get running() {
    return this.contexts.filter((c) => c.err === null && (c.kind === 'WithCancel' || c.kind === 'WithDeadline'))
  }

  toString() {
    return this.#text
  }
}

function snapshot() {
  const raw = native.snapshot()
  for (const c of raw.contexts) {
    c.deadlineInMs ??= null
    c.err ??= null
    c.site ??= null
  }
  return new Snapshot(raw)
}

/** Turns tracking of live contexts on (or off), process-wide. */
function track(on = true) {
  if (typeof on !== 'boolean') throw invalidArg(`polyctx.debug.track: on must be a boolean, got ${typeName(on)}`)
  native.track(on)
  internal.trackSites(on)
}

function isTracking() {
  return native.isTracking()
}

/** Records where `ctx` was made, if it is tracked (JS contexts get their stack frame by themselves). */
function setSite(ctx, site) {
  const h = handle(ctx, 'debug.setSite')
  if (typeof site !== 'string') throw invalidArg(`polyctx.debug.setSite: site must be a string, got ${typeName(site)}`)
  native.setSite(h, site)
}

/** How many cancelable contexts have been freed while still live, process-wide. */
function lostCancels() {
  return native.lostCancels()
}

/**
 * Calls `fn({ context, site })` for each lost cancel freed on this thread
 * from now on (asynchronously, as a microtask; what it throws is an
 * uncaught exception); `null` stops. `site` is where the context was made,
 * if it was tracked.
 */
function onLostCancel(fn) {
  if (fn !== null && typeof fn !== 'function') {
    throw invalidArg(`polyctx.debug.onLostCancel: fn must be a function or null, got ${typeName(fn)}`)
  }
  internal.onLostCancel(fn)
  native.reportLostCancels(fn !== null)
}

/** Turns process warnings for lost cancels on (or off): `onLostCancel` with `process.emitWarning`. */
function warnLostCancels(on = true) {
  if (typeof on !== 'boolean') throw invalidArg(`polyctx.debug.warnLostCancels: on must be a boolean, got ${typeName(on)}`)
  onLostCancel(on ? warn : null)
}

function warn({ context, site }) {
  const where = site === null ? ' (polyctx.debug.track() records where contexts are made)' : ` made at ${site}`
  process.emitWarning(
    `polyctx: ${context}${where} was freed without being canceled: call its cancel function when the work is done ` +
      "(Go's `defer cancel()`), or `using` it",
    { code: 'POLYCTX_LOST_CANCEL' },
  )
}

/** Deadlines armed in the core's timer, process-wide. */
function liveTimers() {
  return native.liveTimers()
}

/** After-funcs not yet started: this thread's `afterFunc`s, and the core's (C's `ctx_after_func`) process-wide. */
function pendingAfterFuncs() {
  return native.pendingAfterFuncs() + internal.pendingAfterFuncs()
}

module.exports = Object.freeze({
  track,
  isTracking,
  setSite,
  snapshot,
  Snapshot,
  lostCancels,
  onLostCancel,
  warnLostCancels,
  liveTimers,
  pendingAfterFuncs,
})
