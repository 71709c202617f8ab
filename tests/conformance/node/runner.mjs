// The Node conformance runner: executes scenario files (../FORMAT.md) with
// polyctx's JS API and prints one line per observation, for check.py to
// compare with what Go's own context printed.
//
//   node runner.mjs SCENARIO.ctx...
//
// This runner hosts only Node: `@node` steps and unprefixed steps use the
// JS API, and so do `@c` and `@py` steps (FORMAT.md lets a runner perform
// the steps of languages it does not host itself). Blocking waits (`wait`,
// `ran`) await the context or the after-func, racing a timer.
//
// After-funcs run on the JS thread, asynchronously (a microtask after the
// context is done): "once, after ctx is done, asynchronously", which is all
// Go promises. `ran F 0s` therefore looks without yielding, as Go's does.
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  afterFunc,
  background,
  cause,
  Canceled,
  createKey,
  DeadlineExceeded,
  todo,
  withCancel,
  withCancelCause,
  withDeadline,
  withTimeout,
  withValue,
  withoutCancel,
} from 'polyctx'

const PREFIXES = new Set(['@c', '@py', '@node'])
const UNITS = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }

class StepError extends Error {}

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
  // Wall-clock milliseconds, with the sub-millisecond part, captured once.
  t0 = performance.timeOrigin + performance.now()
  ctxs = new Map()
  cancels = new Map() // name -> { cancel, withCause }
  keys = new Map()
  afters = new Map() // name -> { stop, runs, ran: Promise }
  all = [] // every cancel function, released (called) at the end

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

  async step(t) {
    const arity = (min, max = min) => {
      if (t.length - 1 < min || t.length - 1 > max) {
        throw new StepError(`${t[0]} takes ${min === max ? min : `${min} to ${max}`} arguments`)
      }
    }
    switch (t[0]) {
      case 'background':
      case 'todo':
        arity(1)
        return this.add(t[1], t[0] === 'todo' ? todo() : background())
      case 'with_cancel': {
        arity(2)
        const [ctx, cancel] = withCancel(this.ctx(t[2]))
        return this.add(t[1], ctx, cancel)
      }
      case 'with_cancel_cause': {
        arity(2)
        const [ctx, cancel] = withCancelCause(this.ctx(t[2]))
        return this.add(t[1], ctx, cancel, true)
      }
      case 'with_timeout': {
        arity(3, 4)
        const parent = this.ctx(t[2])
        const ms = duration(t[3])
        const [ctx, cancel] = withTimeout(parent, ms, t[4] === undefined ? undefined : new Error(t[4]))
        return this.add(t[1], ctx, cancel)
      }
      case 'with_deadline': {
        arity(3, 4)
        const parent = this.ctx(t[2])
        const at = this.t0 + duration(t[3])
        const [ctx, cancel] = withDeadline(parent, at, t[4] === undefined ? undefined : new Error(t[4]))
        return this.add(t[1], ctx, cancel)
      }
      case 'with_value': {
        arity(4)
        if (t[4] === 'nil') throw new StepError('value nil is reserved')
        return this.add(t[1], withValue(this.ctx(t[2]), this.key(t[3]), t[4]))
      }
      case 'without_cancel':
        arity(2)
        return this.add(t[1], withoutCancel(this.ctx(t[2])))
      case 'chain':
        arity(4)
        return this.chain(t[1], t[2], t[3], t[4])
      case 'cancel': {
        arity(1)
        this.ctx(t[1])
        const c = this.cancels.get(t[1])
        if (!c) throw new StepError(`context ${t[1]} has no cancel function`)
        return c.cancel()
      }
      case 'cancel_cause': {
        arity(2)
        this.ctx(t[1])
        const c = this.cancels.get(t[1])
        if (!c?.withCause) throw new StepError(`context ${t[1]} has no cancel-cause function`)
        return c.cancel(new Error(t[2]))
      }
      case 'after_func': {
        arity(2)
        if (!/^[A-Za-z0-9_]+$/.test(t[1])) throw new StepError(`bad name ${t[1]}`)
        if (this.afters.has(t[1])) throw new StepError(`after-func ${t[1]} already exists`)
        const ctx = this.ctx(t[2])
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
        return this.observe(t)
    }
  }

  chain(name, parentName, kind, nTok) {
    const n = /^\d+$/.test(nTok) ? Number(nTok) : 0
    if (n < 1) throw new StepError(`bad chain length ${nTok}`)
    let every = null
    let top = null
    if (kind !== 'cancel') {
      const m = /^(value|value_top):([^:]+):(.+)$/.exec(kind)
      if (!m) throw new StepError(`bad chain kind ${kind}`)
      if (m[3] === 'nil') throw new StepError('value nil is reserved')
      const spec = [this.key(m[2]), m[3]]
      if (m[1] === 'value') every = spec
      else top = spec
    }
    let ctx = this.ctx(parentName)
    let last = null
    for (let i = 0; i < n; i++) {
      const spec = every ?? (i === 0 ? top : null)
      if (spec) {
        ctx = withValue(ctx, spec[0], spec[1])
        last = null
      } else {
        const [c, cancel] = withCancel(ctx)
        this.all.push(cancel)
        ctx = c
        last = cancel
      }
    }
    return this.add(name, ctx, last)
  }

  async observe(t) {
    const arity = (n) => {
      if (t.length - 1 !== n) throw new StepError(`${t[0]} takes ${n} arguments`)
    }
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
        arity(1)
        return yesNo(this.after(t[1]).stop())
      case 'ran': {
        arity(2)
        const f = this.after(t[1])
        const ms = duration(t[2])
        return yesNo(f.runs > 0 || (await within(f.ran, ms)))
      }
      case 'runs':
        arity(1)
        return String(this.after(t[1]).runs)
      default:
        throw new StepError(`unknown operation ${t[0]}`)
    }
  }

  finish() {
    for (const cancel of this.all) cancel()
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
      if (toks[0].startsWith('@')) {
        const prefix = toks[0]
        toks = toks.slice(1)
        if (!PREFIXES.has(prefix)) throw new StepError(`unknown prefix ${prefix}`)
      }
      if (toks.length === 0) throw new StepError('missing operation')
      result = await s.step(toks)
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
