// The Node conformance runner: executes scenario files (../FORMAT.md) with
// polyctx's JS API and prints one line per observation, for check.py to
// compare with what Go's own context printed.
//
//   node runner.mjs SCENARIO.ctx...
//
// This runner hosts Node and C: `@node` steps and unprefixed steps use the
// JS API; `@c` steps go through the C ABI that polyctx's addon exports (one
// core in the process), called with koffi, passing contexts across with
// ctx.toC()/fromC() and keys with key.toC(). `@py` steps use the JS API
// (FORMAT.md lets a runner perform the steps of languages it does not host).
// Blocking waits (`wait`, `ran`) await the context or the after-func,
// racing a timer; `@c wait` blocks in ctx_wait, as C does.
//
// A C after-func's function is ctx_cancel itself, on a marker context's
// cancel handle: it runs on the core's threads with no JS to call back, and
// the runner observes it by the marker being done (an after-func runs at
// most once).
//
// After-funcs run on the JS thread, asynchronously (a microtask after the
// context is done): "once, after ctx is done, asynchronously", which is all
// Go promises. `ran F 0s` therefore looks without yielding, as Go's does.
import { readFileSync, realpathSync } from 'node:fs'
import { basename } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  afterFunc,
  background,
  cause,
  Canceled,
  cLibrary,
  createKey,
  DeadlineExceeded,
  fromC,
  todo,
  withCancel,
  withCancelCause,
  withDeadline,
  withTimeout,
  withValue,
  withoutCancel,
} from 'polyctx'

// koffi is one of polyctx's pinned dev dependencies.
const koffi = createRequire(realpathSync(fileURLToPath(import.meta.resolve('polyctx'))))('koffi')

/** The C ABI of include/ctx.h in this process, pointers as numbers. */
function cAbi() {
  const lib = koffi.load(cLibrary())
  const f = (sig) => lib.func(sig)
  const libc = koffi.load(process.platform === 'darwin' ? 'libSystem.B.dylib' : 'libc.so.6')
  const dlsym = libc.func('uint64_t dlsym(uint64_t handle, const char *name)')
  const fn = dlsym(process.platform === 'darwin' ? -2 : 0, 'ctx_cancel') // RTLD_DEFAULT
  if (!fn) throw new Error('ctx_cancel is not global: cLibrary() did not take')
  return {
    OK: 0,
    ETIMEDOUT: 3,
    ENOTFOUND: 7,
    ENODEADLINE: 8,
    ENOTDONE: 9,
    ERR_NAMES: { 0: 'nil', 100: 'canceled', 101: 'deadline_exceeded' },
    VALUE_BYTES: 1,
    cancelFn: fn,
    background: f('uint64_t ctx_background()'),
    todo: f('uint64_t ctx_todo()'),
    release: f('void ctx_release(uint64_t ctx)'),
    withCancel: f('int ctx_with_cancel(uint64_t parent, _Out_ uint64_t *ctx, _Out_ uint64_t *cancel)'),
    withCancelCause: f('int ctx_with_cancel_cause(uint64_t parent, _Out_ uint64_t *ctx, _Out_ uint64_t *cancel)'),
    withTimeout: f('int ctx_with_timeout(uint64_t parent, int64_t ns, _Out_ uint64_t *ctx, _Out_ uint64_t *cancel)'),
    withTimeoutCause: f(
      'int ctx_with_timeout_cause(uint64_t parent, int64_t ns, const char *msg, int64_t code, _Out_ uint64_t *ctx, _Out_ uint64_t *cancel)',
    ),
    withDeadline: f('int ctx_with_deadline(uint64_t parent, int64_t at, _Out_ uint64_t *ctx, _Out_ uint64_t *cancel)'),
    withDeadlineCause: f(
      'int ctx_with_deadline_cause(uint64_t parent, int64_t at, const char *msg, int64_t code, _Out_ uint64_t *ctx, _Out_ uint64_t *cancel)',
    ),
    withoutCancel: f('int ctx_without_cancel(uint64_t parent, _Out_ uint64_t *out)'),
    withValueBytes: f('int ctx_with_value_bytes(uint64_t parent, uint64_t key, const char *data, size_t len, _Out_ uint64_t *out)'),
    err: f('int ctx_err(uint64_t ctx)'),
    isDone: f('bool ctx_is_done(uint64_t ctx)'),
    deadline: f('int ctx_deadline(uint64_t ctx, _Out_ int64_t *out)'),
    cause: f('int ctx_cause(uint64_t ctx, _Out_ uint8_t *buf, size_t len, _Out_ int64_t *code, _Out_ size_t *msgLen)'),
    wait: f('int ctx_wait(uint64_t ctx, int64_t ns)'),
    nowNs: f('int64_t ctx_now_ns()'),
    cancel: f('int ctx_cancel(uint64_t cancel)'),
    cancelCause: f('int ctx_cancel_cause(uint64_t cancel, const char *msg, int64_t code)'),
    cancelRelease: f('void ctx_cancel_release(uint64_t cancel)'),
    keyRelease: f('void ctx_key_release(uint64_t key)'),
    value: f('int ctx_value(uint64_t ctx, uint64_t key, _Out_ void **data, _Out_ size_t *len, _Out_ int *kind)'),
    afterFunc: f('int ctx_after_func(uint64_t ctx, uint64_t fn, uint64_t userdata, uint64_t finalizer, _Out_ uint64_t *out)'),
    afterFuncStop: f('int ctx_after_func_stop(uint64_t after, _Out_ bool *stopped)'),
    afterFuncRelease: f('void ctx_after_func_release(uint64_t after)'),
    strerror: f('const char *ctx_strerror(int status)'),
    errString: f('const char *ctx_err_string(int err)'),
  }
}
const C = cAbi()

const PREFIXES = new Set(['@c', '@py', '@node'])
const UNITS = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }

class StepError extends Error {}

/** A DURATION in nanoseconds, as a bigint. */
function durationNs(tok) {
  const m = /^(-?)(\d+)(ns|us|ms|s|m|h)$/.exec(tok)
  if (!m) throw new StepError(`bad duration ${tok}`)
  const ns = BigInt(m[2]) * NS[m[3]]
  return m[1] ? -ns : ns
}
const NS = { ns: 1n, us: 1000n, ms: 1000000n, s: 1000000000n, m: 60000000000n, h: 3600000000000n }

/** A DURATION in milliseconds (may be fractional or negative). */
function duration(tok) {
  const m = /^(-?)(\d+)(ns|us|ms|s|m|h)$/.exec(tok)
  if (!m) throw new StepError(`bad duration ${tok}`)
  const ms = Number(m[2]) * UNITS[m[3]]
  return m[1] ? -ms : ms
}

function errName(err) {
  if (err === null) return 'nil'
  if (err instanceof DeadlineExceeded) return 'deadline_exceeded'
  if (err instanceof Canceled) return 'canceled'
  throw new StepError(`unexpected error ${err}`)
}

function causeName(c) {
  if (c === null) return 'nil'
  if (c instanceof Canceled || c instanceof DeadlineExceeded) return errName(c)
  return `msg:${c.message}`
}

const yesNo = (b) => (b ? 'true' : 'false')

/** Resolves to true when `promise` settles within `ms`, else false; looks first. */
async function within(promise, ms) {
  if (ms <= 0) return false
  const ac = new AbortController()
  const timer = sleep(ms, false, { signal: ac.signal }).catch(() => false)
  const result = await Promise.race([promise.then(() => true), timer])
  ac.abort()
  return result
}

class Scenario {
  // T0 as a whole wall-clock millisecond, and the same instant on the
  // core's clock (what C's deadlines use): a JS deadline of a whole number
  // of milliseconds converts to the core's clock exactly, so deadlines set
  // from JS and from C at equal offsets are equal.
  t0 = Math.floor(Date.now())
  t0Ns = (() => {
    const [anchor] = withDeadline(background(), this.t0)
    const ptr = anchor.toC()
    const out = [0]
    C.deadline(ptr, out)
    C.release(ptr)
    return BigInt(out[0])
  })()
  ctxs = new Map()
  cancels = new Map() // name -> { cancel, withCause }
  keys = new Map()
  afters = new Map() // name -> { stop, runs, ran: Promise } or, made in C, { c: { handle, marker, markerCancel } }
  all = [] // every cancel function, released (called) at the end
  cCancels = new Map() // name -> the C cancel handle of a context C made
  cKeys = new Map() // key name -> ctx_key_t*
  owned = [] // C handles to release at the end: [release, ptr]

  /** A C reference to the context `name`, released with the scenario. */
  cCtx(name) {
    const ptr = Number(this.ctx(name).toC())
    this.owned.push([C.release, ptr])
    return ptr
  }

  cKey(name) {
    let k = this.cKeys.get(name)
    if (k === undefined) this.cKeys.set(name, (k = Number(this.key(name).toC())))
    return k
  }

  check(status, what) {
    if (status !== C.OK) throw new StepError(`${what}: ${C.strerror(status)}`)
  }

  /** Adopts a context C made (and its cancel handle, which C keeps for `@c cancel`). */
  adopt(status, what, ctxOut, cancelOut) {
    this.check(status, what)
    const ptr = ctxOut[0]
    let result
    if (cancelOut === undefined) {
      result = [fromC(BigInt(ptr)), undefined]
    } else {
      result = fromC(BigInt(ptr), BigInt(cancelOut[0]))
      this.owned.push([C.cancelRelease, cancelOut[0]])
    }
    C.release(ptr)
    return result
  }

  ctx(name) {
    const c = this.ctxs.get(name)
    if (c === undefined) throw new StepError(`unknown context ${name}`)
    return c
  }

  key(name) {
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new StepError(`bad key ${name}`)
    let k = this.keys.get(name)
    if (k === undefined) this.keys.set(name, (k = createKey(name)))
    return k
  }

  after(name) {
    const f = this.afters.get(name)
    if (f === undefined) throw new StepError(`unknown after-func ${name}`)
    return f
  }

  add(name, ctx, cancel, withCause = false) {
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new StepError(`bad name ${name}`)
    if (this.ctxs.has(name)) throw new StepError(`context ${name} already exists`)
    this.ctxs.set(name, ctx)
    if (cancel) {
      this.cancels.set(name, { cancel, withCause })
      this.all.push(cancel)
    }
  }

  async step(t, onC) {
    const arity = (min, max = min) => {
      if (t.length - 1 < min || t.length - 1 > max) {
        throw new StepError(`${t[0]} takes ${min === max ? min : `${min} to ${max}`} arguments`)
      }
    }
    switch (t[0]) {
      case 'background':
      case 'todo':
        arity(1)
        if (onC) return this.add(t[1], fromC(BigInt(t[0] === 'todo' ? C.todo() : C.background())))
        return this.add(t[1], t[0] === 'todo' ? todo() : background())
      case 'with_cancel': {
        arity(2)
        if (onC) {
          const out = [0]
          const cancelOut = [0]
          const [ctx, cancel] = this.adopt(C.withCancel(this.cCtx(t[2]), out, cancelOut), 'with_cancel', out, cancelOut)
          this.cCancels.set(t[1], cancelOut[0])
          return this.add(t[1], ctx, cancel)
        }
        const [ctx, cancel] = withCancel(this.ctx(t[2]))
        return this.add(t[1], ctx, cancel)
      }
      case 'with_cancel_cause': {
        arity(2)
        if (onC) {
          const out = [0]
          const cancelOut = [0]
          const status = C.withCancelCause(this.cCtx(t[2]), out, cancelOut)
          const [ctx, cancel] = this.adopt(status, 'with_cancel_cause', out, cancelOut)
          this.cCancels.set(t[1], cancelOut[0])
          return this.add(t[1], ctx, cancel, true)
        }
        const [ctx, cancel] = withCancelCause(this.ctx(t[2]))
        return this.add(t[1], ctx, cancel, true)
      }
      case 'with_timeout': {
        arity(3, 4)
        const parent = this.ctx(t[2])
        if (onC) {
          const ns = durationNs(t[3])
          const out = [0]
          const cancelOut = [0]
          const p = this.cCtx(t[2])
          const status =
            t[4] === undefined
              ? C.withTimeout(p, ns, out, cancelOut)
              : C.withTimeoutCause(p, ns, t[4], 0, out, cancelOut)
          const [ctx, cancel] = this.adopt(status, 'with_timeout', out, cancelOut)
          this.cCancels.set(t[1], cancelOut[0])
          return this.add(t[1], ctx, cancel)
        }
        const ms = duration(t[3])
        const [ctx, cancel] = withTimeout(parent, ms, t[4] === undefined ? undefined : new Error(t[4]))
        return this.add(t[1], ctx, cancel)
      }
      case 'with_deadline': {
        arity(3, 4)
        const parent = this.ctx(t[2])
        if (onC) {
          const at = this.t0Ns + durationNs(t[3])
          const out = [0]
          const cancelOut = [0]
          const p = this.cCtx(t[2])
          const status =
            t[4] === undefined
              ? C.withDeadline(p, at, out, cancelOut)
              : C.withDeadlineCause(p, at, t[4], 0, out, cancelOut)
          const [ctx, cancel] = this.adopt(status, 'with_deadline', out, cancelOut)
          this.cCancels.set(t[1], cancelOut[0])
          return this.add(t[1], ctx, cancel)
        }
        const at = this.t0 + duration(t[3])
        const [ctx, cancel] = withDeadline(parent, at, t[4] === undefined ? undefined : new Error(t[4]))
        return this.add(t[1], ctx, cancel)
      }
      case 'with_value': {
        arity(4)
        if (t[4] === 'nil') throw new StepError('value nil is reserved')
        return this.add(t[1], this.withValue(this.ctx(t[2]), t[3], t[4], onC))
      }
      case 'without_cancel':
        arity(2)
        if (onC) {
          const out = [0]
          return this.add(t[1], this.adopt(C.withoutCancel(this.cCtx(t[2]), out), 'without_cancel', out)[0])
        }
        return this.add(t[1], withoutCancel(this.ctx(t[2])))
      case 'chain':
        arity(4)
        return this.chain(t[1], t[2], t[3], t[4], onC)
      case 'cancel': {
        arity(1)
        this.ctx(t[1])
        const c = this.cancels.get(t[1])
        if (!c) throw new StepError(`context ${t[1]} has no cancel function`)
        if (onC) return this.check(C.cancel(this.cCancelOf(t[1])), 'cancel')
        return c.cancel()
      }
      case 'cancel_cause': {
        arity(2)
        this.ctx(t[1])
        const c = this.cancels.get(t[1])
        if (!c?.withCause) throw new StepError(`context ${t[1]} has no cancel-cause function`)
        if (onC) return this.check(C.cancelCause(this.cCancelOf(t[1]), t[2], 0), 'cancel_cause')
        return c.cancel(new Error(t[2]))
      }
      case 'after_func': {
        arity(2)
        if (!/^[A-Za-z0-9_]+$/.test(t[1])) throw new StepError(`bad name ${t[1]}`)
        if (this.afters.has(t[1])) throw new StepError(`after-func ${t[1]} already exists`)
        const ctx = this.ctx(t[2])
        if (onC) return this.cAfterFunc(t[1], t[2])
        const f = { runs: 0 }
        f.ran = new Promise((resolve) => (f.resolve = resolve))
        f.stop = afterFunc(ctx, () => {
          f.runs++
          f.resolve()
        })
        this.afters.set(t[1], f)
        return
      }
      default:
        return this.observe(t, onC)
    }
  }

  cCancelOf(name) {
    const k = this.cCancels.get(name)
    if (k === undefined) throw new StepError(`${name} was not made in C, so C has no cancel handle for it`)
    return k
  }

  withValue(parent, key, value, onC) {
    if (!onC) return withValue(parent, this.key(key), value)
    const ptr = Number(parent.toC())
    const out = [0]
    const data = Buffer.from(value)
    try {
      return this.adopt(C.withValueBytes(ptr, this.cKey(key), data, data.length, out), 'with_value', out)[0]
    } finally {
      C.release(ptr)
    }
  }

  cAfterFunc(name, ctxName) {
    const marker = [0]
    const markerCancel = [0]
    this.check(C.withCancel(C.background(), marker, markerCancel), 'after_func')
    const out = [0]
    const status = C.afterFunc(this.cCtx(ctxName), C.cancelFn, markerCancel[0], 0, out)
    if (status !== C.OK) {
      C.cancelRelease(markerCancel[0])
      C.release(marker[0])
      this.check(status, 'after_func')
    }
    const f = { c: { handle: out[0], marker: marker[0], markerCancel: markerCancel[0] } }
    f.markerCtx = fromC(BigInt(marker[0]))
    this.afters.set(name, f)
  }

  chain(name, parentName, kind, nTok, onC) {
    const n = /^\d+$/.test(nTok) ? Number(nTok) : 0
    if (n < 1) throw new StepError(`bad chain length ${nTok}`)
    let every = null
    let top = null
    if (kind !== 'cancel') {
      const m = /^(value|value_top):([^:]+):(.+)$/.exec(kind)
      if (!m) throw new StepError(`bad chain kind ${kind}`)
      if (m[3] === 'nil') throw new StepError('value nil is reserved')
      const spec = [m[2], m[3]]
      if (m[1] === 'value') every = spec
      else top = spec
    }
    let ctx = this.ctx(parentName)
    let last = null
    for (let i = 0; i < n; i++) {
      const spec = every ?? (i === 0 ? top : null)
      if (spec) {
        ctx = this.withValue(ctx, spec[0], spec[1], onC)
        last = null
      } else if (onC) {
        const ptr = Number(ctx.toC())
        const out = [0]
        const cancelOut = [0]
        try {
          ;[ctx, last] = this.adopt(C.withCancel(ptr, out, cancelOut), 'chain', out, cancelOut)
        } finally {
          C.release(ptr)
        }
        this.all.push(last)
      } else {
        const [c, cancel] = withCancel(ctx)
        this.all.push(cancel)
        ctx = c
        last = cancel
      }
    }
    return this.add(name, ctx, last)
  }

  async observe(t, onC) {
    const arity = (n) => {
      if (t.length - 1 !== n) throw new StepError(`${t[0]} takes ${n} arguments`)
    }
    if (onC) return this.observeC(t, arity)
    switch (t[0]) {
      case 'err':
        arity(1)
        return errName(this.ctx(t[1]).err())
      case 'cause':
        arity(1)
        return causeName(cause(this.ctx(t[1])))
      case 'done':
        arity(1)
        return yesNo(this.ctx(t[1]).isDone())
      case 'deadline':
        arity(1)
        return this.ctx(t[1]).deadline() === null ? 'none' : 'set'
      case 'deadline_cmp': {
        arity(2)
        const a = this.ctx(t[1]).deadline()
        const b = this.ctx(t[2]).deadline()
        if (a === null || b === null) return 'none'
        return a < b ? 'before' : a > b ? 'after' : 'equal'
      }
      case 'deadline_within': {
        arity(2)
        const limit = performance.timeOrigin + performance.now() + duration(t[2])
        const d = this.ctx(t[1]).deadline()
        return yesNo(d !== null && d.getTime() <= limit)
      }
      case 'value': {
        arity(2)
        const v = this.ctx(t[1]).value(this.key(t[2]))
        return v === undefined ? 'nil' : String(v)
      }
      case 'wait': {
        arity(2)
        const ctx = this.ctx(t[1])
        const ms = duration(t[2])
        return yesNo(ctx.isDone() || (await within(ctx.done(), ms)))
      }
      case 'stop':
      case 'ran':
      case 'runs':
        return this.afterObservation(t, arity)
      default:
        throw new StepError(`unknown operation ${t[0]}`)
    }
  }

  // After-funcs are observed the same way from either side: a C one through C.
  async afterObservation(t, arity) {
    const f = this.after(t[1])
    switch (t[0]) {
      case 'stop': {
        arity(1)
        if (f.c === undefined) return yesNo(f.stop())
        const stopped = [false]
        this.check(C.afterFuncStop(f.c.handle, stopped), 'stop')
        return yesNo(stopped[0])
      }
      case 'ran': {
        arity(2)
        const ms = duration(t[2])
        if (f.c !== undefined) return yesNo(f.markerCtx.isDone() || (await within(f.markerCtx.done(), ms)))
        return yesNo(f.runs > 0 || (await within(f.ran, ms)))
      }
      default:
        arity(1)
        return String(f.c !== undefined ? Number(C.isDone(f.c.marker)) : f.runs)
    }
  }

  cDeadline(name) {
    const out = [0]
    const status = C.deadline(this.cCtx(name), out)
    if (status === C.ENODEADLINE) return null
    this.check(status, 'deadline')
    return BigInt(out[0])
  }

  async observeC(t, arity) {
    switch (t[0]) {
      case 'err':
        arity(1)
        return C.ERR_NAMES[C.err(this.cCtx(t[1]))]
      case 'cause': {
        arity(1)
        const ptr = this.cCtx(t[1])
        const buf = Buffer.alloc(256)
        const code = [0]
        const n = [0]
        const status = C.cause(ptr, buf, buf.length, code, n)
        if (status === C.ENOTDONE) return 'nil'
        this.check(status, 'cause')
        const text = buf.subarray(0, Math.min(n[0], buf.length - 1)).toString()
        const err = C.err(ptr)
        if (err !== 0 && Number(code[0]) === 0 && text === C.errString(err)) return C.ERR_NAMES[err]
        return `msg:${text}`
      }
      case 'done':
        arity(1)
        return yesNo(C.isDone(this.cCtx(t[1])))
      case 'deadline':
        arity(1)
        return this.cDeadline(t[1]) === null ? 'none' : 'set'
      case 'deadline_cmp': {
        arity(2)
        const a = this.cDeadline(t[1])
        const b = this.cDeadline(t[2])
        if (a === null || b === null) return 'none'
        return a < b ? 'before' : a > b ? 'after' : 'equal'
      }
      case 'deadline_within': {
        arity(2)
        const d = this.cDeadline(t[1])
        return yesNo(d !== null && d <= BigInt(C.nowNs()) + durationNs(t[2]))
      }
      case 'value': {
        arity(2)
        const data = [null]
        const len = [0]
        const kind = [0]
        const status = C.value(this.cCtx(t[1]), this.cKey(t[2]), data, len, kind)
        if (status === C.ENOTFOUND) return 'nil'
        this.check(status, 'value')
        if (kind[0] !== C.VALUE_BYTES) return '<pointer>' // a JS value other than a string
        return len[0] === 0 ? '' : Buffer.from(koffi.decode(data[0], koffi.array('uint8_t', len[0]))).toString()
      }
      case 'wait': {
        arity(2)
        const ptr = this.cCtx(t[1])
        const ns = durationNs(t[2])
        return yesNo(C.isDone(ptr) || (ns > 0n && C.wait(ptr, ns) === C.OK))
      }
      case 'stop':
      case 'ran':
      case 'runs':
        return this.afterObservation(t, arity)
      default:
        throw new StepError(`unknown operation ${t[0]}`)
    }
  }

  finish() {
    for (const cancel of this.all) cancel()
    // C after-funcs first: a started one may still be cancelling its marker.
    for (const f of this.afters.values()) {
      if (f.c === undefined) continue
      const stopped = [false]
      C.afterFuncStop(f.c.handle, stopped)
      if (!stopped[0]) C.wait(f.c.marker, 1_000_000_000n)
      C.afterFuncRelease(f.c.handle)
      C.cancelRelease(f.c.markerCancel)
      C.release(f.c.marker)
    }
    for (const [release, ptr] of this.owned) release(ptr)
    for (const k of this.cKeys.values()) C.keyRelease(k)
  }
}

async function run(name, source) {
  const s = new Scenario()
  const out = []
  const lines = source.split('\n')
  for (let i = 0; i < lines.length; i++) {
    let toks = lines[i].split(/[ \t]+/).filter((x) => x !== '')
    if (toks.length === 0 || toks[0].startsWith('#')) continue
    let result
    let failed = false
    try {
      let onC = false
      if (toks[0].startsWith('@')) {
        const prefix = toks[0]
        toks = toks.slice(1)
        if (!PREFIXES.has(prefix)) throw new StepError(`unknown prefix ${prefix}`)
        onC = prefix === '@c'
      }
      if (toks.length === 0) throw new StepError('missing operation')
      result = await s.step(toks, onC)
    } catch (e) {
      if (!(e instanceof StepError || e instanceof TypeError || e instanceof RangeError)) throw e
      result = `error:${e.message}`
      failed = true
    }
    if (result !== undefined) out.push(`${name}:${i + 1} ${toks.join(' ')} => ${result}`)
    if (failed) break
  }
  s.finish()
  return out
}

let status = 0
for (const path of process.argv.slice(2)) {
  let source
  try {
    source = readFileSync(path, 'utf8')
  } catch (e) {
    process.stderr.write(`${path}: ${e.message}\n`)
    status = 1
    continue
  }
  const lines = await run(basename(path).replace(/\.ctx$/, ''), source)
  if (lines.length) process.stdout.write(lines.join('\n') + '\n')
}
process.exitCode = status
