// Type declarations for polyctx (hand-written; the native module's generated
// typings are native.d.ts, which is not part of the public API).

/** Cancels a context; `Symbol.dispose` makes it usable with `using`. Calling it again does nothing. */
export interface CancelFunc {
  (): void
  [Symbol.dispose](): void
}

/** Cancels a context with a cause (any value; `undefined`/`null` mean none, as Go's `nil`). */
export interface CancelCauseFunc {
  (cause?: unknown): void
  [Symbol.dispose](): void
}

/**
 * A request's cancellation signal, deadline and values (Go's
 * `context.Context`). Made by `background()`, `todo()` and the `with*`
 * functions, never with `new`. It belongs to the thread that made it:
 * structured clone (`postMessage`, `workerData`) throws `DataCloneError`.
 */
export declare class Context {
  private constructor()
  /** `null` while live; once done, a `Canceled` or `DeadlineExceeded` whose `cause` is the context's cause, if one was given. */
  err(): Canceled | DeadlineExceeded | null
  /** When the context will be done by itself (the deadline given, even one long past), or `null`. */
  deadline(): Date | null
  /** The value stored under `key` by the nearest `withValue`, or `undefined`. */
  value<T>(key: Key<T>): T | undefined
  /** True once the context is done. */
  isDone(): boolean
  /**
   * Resolves once the context is done; never rejects. Like the signal and a
   * pending deadline, it does not keep the process alive.
   */
  done(): Promise<void>
  /** Aborts when the context is done; its `reason` is `err()`. Made on first access. */
  readonly signal: AbortSignal
  /** Go's `String()`, e.g. `context.Background.WithCancel`. */
  toString(): string
  /**
   * A new `ctx_t*` for this context, as a bigint, for C code in this process
   * (see `cLibrary()`): it owns one reference, which C releases with `ctx_release`.
   */
  toC(): bigint
}

/** A key for `withValue`, unique by identity. `T` is the type of the values stored under it. */
export declare class Key<T = unknown> {
  private constructor()
  private readonly __type?: T
  /** The name given to `createKey`, for display only. */
  readonly name: string
  toString(): string
  /** A new `ctx_key_t*` for this same key, as a bigint, for C to release with `ctx_key_release`. */
  toC(): bigint
}

/** The error of a done context. */
export declare class ContextError extends Error {
  /** Go's `Timeout()`: true for `DeadlineExceeded`. */
  readonly timeout: boolean
}

/** The context was canceled (Go's `context.Canceled`). Its `name` is `'AbortError'`. */
export declare class Canceled extends ContextError {
  constructor(options?: { cause?: unknown })
  readonly timeout: false
}

/** The context's deadline passed (Go's `context.DeadlineExceeded`). Its `name` is `'TimeoutError'`. */
export declare class DeadlineExceeded extends ContextError {
  constructor(options?: { cause?: unknown })
  readonly timeout: true
}

/** The root of every tree: never done, no deadline, no values. */
export declare function background(): Context
/** A placeholder root for code not yet given a context; behaves like `background()`. */
export declare function todo(): Context
/** A child done when `cancel()` is called or `parent` is done. */
export declare function withCancel(parent: Context): [Context, CancelFunc]
/** Like `withCancel`, and `cancel(cause)` records any value as the cause. */
export declare function withCancelCause(parent: Context): [Context, CancelCauseFunc]
/**
 * A child also done `ms` milliseconds from now, with `cause` as its cause
 * then. Zero or negative: already done, as in Go. Throws `RangeError` for
 * NaN, infinities and more than about 292 years.
 */
export declare function withTimeout(parent: Context, ms: number, cause?: unknown): [Context, CancelFunc]
/**
 * A child also done at `deadline` (a Date or epoch milliseconds), with
 * `cause` as its cause then. Any past time is past; throws `RangeError` for
 * an invalid time or one more than about 292 years ahead.
 */
export declare function withDeadline(parent: Context, deadline: Date | number, cause?: unknown): [Context, CancelFunc]
/** A child carrying `value` under `key`. A string is stored as UTF-8, which C reads too. */
export declare function withValue<T>(parent: Context, key: Key<T>, value: T): Context
/** A child that keeps `parent`'s values but is never done: no deadline, no error. */
export declare function withoutCancel(parent: Context): Context
/** A new key, distinct from every other, even one with the same name. */
export declare function createKey<T = unknown>(name: string): Key<T>
/**
 * Calls `fn` once, on this thread and asynchronously, after `ctx` is done.
 * `stop()` returns true if it kept `fn` from being started.
 */
export declare function afterFunc(ctx: Context, fn: () => void): () => boolean
/** Why `ctx` is done: the cause given to the first cancellation, else `ctx.err()`; `null` while live. */
export declare function cause(ctx: Context): unknown
/**
 * A context done when `signal` aborts (its reason becomes the cause) or
 * `parent` is done. One listener per signal, however many contexts;
 * `cancel()` stops listening at once, and a context dropped without it is
 * let go once nothing can observe it.
 */
export declare function fromSignal(signal: AbortSignal, parent?: Context): [Context, CancelCauseFunc]

/**
 * Why a request's context ended, from the core's table: Go's two errors, and
 * client disconnected, peer canceled, server shutdown, request finished.
 * One frozen instance per reason; cancel a context with one
 * (`cancel(EndReason.serverShutdown)`) and it is the context's cause in every language.
 */
export declare class EndReason extends Error {
  private constructor()
  /** The stable lowercase name, the same in every language. */
  readonly reason:
    | 'canceled'
    | 'deadline_exceeded'
    | 'client_disconnected'
    | 'peer_canceled'
    | 'server_shutdown'
    | 'request_finished'
  /** The gRPC status code (1, 4 or 14). */
  readonly grpcCode: number
  /** The Connect error code. */
  readonly connectCode: string
  /** The HTTP status (499, 503 or 504). */
  readonly httpStatus: number
  /** Why `ctx` ended; `null` while it is live. */
  static of(ctx: Context): EndReason | null
  static readonly canceled: EndReason
  static readonly deadlineExceeded: EndReason
  static readonly clientDisconnected: EndReason
  static readonly peerCanceled: EndReason
  static readonly serverShutdown: EndReason
  static readonly requestFinished: EndReason
  /** Every reason, in the core's order. */
  static readonly all: readonly EndReason[]
}

/** The context `run()` (or a request middleware) made current here; `background()` outside any. */
export declare function current(): Context
/** Calls `fn(...args)` with `ctx` as `current()` there and in everything it starts. */
export declare function run<A extends unknown[], R>(ctx: Context, fn: (...args: A) => R, ...args: A): R
/** `ctx.toC()`. */
export declare function toC(ctx: Context): bigint
/**
 * The context behind a `ctx_t*` from C, with references of its own (the
 * caller still releases the one it passed). With a `ctx_cancel_t*` too,
 * `[ctx, cancel]`. The handles must be live: a dangling pointer crashes, as in C.
 */
export declare function fromC(ptr: bigint): Context
export declare function fromC(ptr: bigint, cancelPtr: bigint): [Context, CancelCauseFunc]
/**
 * The path of the shared library exporting polyctx's C ABI in this process
 * (this package's native module), whose `ctx_*` symbols are now global: C
 * addons loaded later, built with `ctx_*` undefined, use the same core.
 */
export declare function cLibrary(): string
/** What is live natively, process-wide. */
export declare function stats(): {
  /** Context handles: JS wrappers not yet collected. */
  contexts: number
  keys: number
  /** Signals and after-funcs waiting for a context. */
  watches: number
  /** Deadlines armed in the core's timer. */
  deadlines: number
}

/**
 * A group of tasks under one context (Go's `errgroup.WithContext`). Each task
 * gets the group's context, a child of `parent`, which is also `current()`
 * in it. The first task to fail cancels that context with its error as the
 * cause; `wait()` settles once every task has, then cancels the context,
 * rejecting with the first error as is. `limit` bounds how many run at
 * once; queued tasks never start if the context is done first.
 */
export declare class Group {
  constructor(parent: Context, options?: { limit?: number | null })
  /** The group's context: done when the parent is, at the first failure, or once `wait()` has settled. */
  readonly context: Context
  /** Runs `fn(ctx)` as a task; its promise is the group's to handle (ignoring it is safe). */
  go<T>(fn: (ctx: Context) => T | PromiseLike<T>): Promise<T>
  /** Settles once every task has: rejects with the first error, or resolves. */
  wait(): Promise<void>
}
/**
 * Runs each function of `tasks` as a task of a `Group` of `parent` and
 * resolves to their results in order; rejects with the first error once
 * every task has settled.
 */
export declare function group<T>(
  parent: Context,
  tasks: Iterable<(ctx: Context) => T | PromiseLike<T>>,
  options?: { limit?: number | null },
): Promise<T[]>

/** The settings of a `Backoff`, in milliseconds. */
export interface BackoffOptions {
  /** The wait after the first failure (100). */
  initial?: number
  /** The longest wait (10,000). */
  max?: number
  /** Each wait is this many times the previous one, at least 1 (2). */
  multiplier?: number
  /** How much of each wait is random, 0 to 1 (0.2). */
  jitter?: number
  /** Give up after this many attempts (null: only the context's time limits). */
  maxAttempts?: number | null
  /** How long one attempt is expected to take: an attempt the remaining time cannot fit is never started. */
  attemptTime?: number | null
}
/** Why `retry` gave up. */
export type GiveUp = 'attempts' | 'deadline' | 'canceled'
/** How to space the attempts of `retry`: the core's rules (exponential, capped, jittered, within the budget). */
export declare class Backoff implements Readonly<Required<BackoffOptions>> {
  constructor(options?: BackoffOptions)
  readonly initial: number
  readonly max: number
  readonly multiplier: number
  readonly jitter: number
  readonly maxAttempts: number | null
  readonly attemptTime: number | null
  /** After `attempts` failures: the milliseconds to wait, or why to give up. `random` in [0, 1) is for tests. */
  next(ctx: Context, attempts: number, random?: number): number | GiveUp
}
/**
 * `retry` gave up: `reason`, how many `attempts` ran, the `lastError`, and
 * as `cause` what made it give up (the cancellation's cause, the
 * context's `DeadlineExceeded`, or else the last error).
 */
export declare class RetryError extends Error {
  readonly reason: GiveUp
  readonly attempts: number
  readonly lastError: unknown
}
/**
 * Calls `fn(attempt)` until it succeeds, fails with an error `retryable`
 * does not accept (rejected as is), or the backoff gives up (`RetryError`).
 * One budget, `ctx`'s, covers every attempt and wait; waits end the moment
 * `ctx` is done.
 */
export declare function retry<T>(
  ctx: Context,
  fn: (attempt: number) => T | PromiseLike<T>,
  options: { retryable: (error: unknown) => boolean; backoff?: Backoff | BackoffOptions },
): Promise<T>
/** Resolves after `ms`, or rejects with `ctx.err()` as soon as `ctx` is done. */
export declare function sleep(ctx: Context, ms: number): Promise<void>
/** Settles as `promise` does, or rejects with `ctx.err()` as soon as `ctx` is done. */
export declare function waitFor<T>(ctx: Context, promise: T | PromiseLike<T>): Promise<T>

/** One tracked live context. */
export interface TrackedContext {
  readonly id: number
  readonly parent: number | null
  readonly kind: 'WithCancel' | 'WithDeadline' | 'WithValue' | 'WithoutCancel'
  readonly ageMs: number
  /** Milliseconds until its deadline (negative: past), or null. */
  readonly deadlineInMs: number | null
  /** Go's text of its error, or null while it is not done. */
  readonly err: string | null
  /** The stack frame that made it (or what another language recorded), if known. */
  readonly site: string | null
}
/** A lost cancel: a cancelable context freed while still live. */
export interface LostCancel {
  /** The context as Go's `String()` prints it. */
  readonly context: string
  /** Where it was made, if it was tracked. */
  readonly site: string | null
}
/** Diagnostics: lost cancels, live contexts, what is pending. */
export declare const debug: {
  /** Tracks every context made from now on (or stops), process-wide. */
  track(on?: boolean): void
  isTracking(): boolean
  setSite(ctx: Context, site: string): void
  /** The tracked contexts alive now, oldest first; `toString()` is the tree. */
  snapshot(): {
    readonly contexts: readonly TrackedContext[]
    /** The cancelable contexts (WithCancel, WithDeadline) not yet done. */
    readonly running: TrackedContext[]
    toString(): string
  }
  /** Cancelable contexts freed while still live, process-wide. */
  lostCancels(): number
  /** Calls `fn` for each lost cancel freed on this thread; `null` stops. */
  onLostCancel(fn: ((lost: LostCancel) => void) | null): void
  /** Process warnings (code `POLYCTX_LOST_CANCEL`) for lost cancels, off by default. */
  warnLostCancels(on?: boolean): void
  /** Deadlines armed in the core's timer, process-wide. */
  liveTimers(): number
  /** After-funcs not yet started. */
  pendingAfterFuncs(): number
}

import * as wireModule from './wire.js'
/** What crosses between services: see `polyctx/wire`. */
export declare const wire: typeof wireModule
