// Type-checked by `make lint` (tsc), never run: the declarations must let
// ES module code use the API as the README does, and reject misuse.
import { setTimeout as sleep } from 'node:timers/promises'
import polyctx, {
  background,
  withTimeout,
  withCancelCause,
  withValue,
  createKey,
  afterFunc,
  cause,
  fromSignal,
  Canceled,
  DeadlineExceeded,
  type Context,
} from 'polyctx'

const traceId = createKey<string>('trace-id')

async function call(ctx: Context, ms: number): Promise<string> {
  await sleep(ms, undefined, { signal: ctx.signal })
  const id: string | undefined = ctx.value(traceId)
  return id ?? 'none'
}

export async function main(): Promise<void> {
  const [ctx, cancel] = withTimeout(withValue(background(), traceId, 'abc'), 150, new Error('too slow'))
  using _cancel = cancel
  const stop: () => boolean = afterFunc(ctx, () => {})
  stop()
  await call(ctx, 10)
  const err = ctx.err()
  if (err instanceof DeadlineExceeded && err.timeout) console.log(err.cause)
  const d: Date | null = ctx.deadline()
  await ctx.done()
  const c: unknown = cause(ctx)
  const [child, cancelChild] = withCancelCause(ctx)
  cancelChild(new Error('client went away'))
  const [fromAbort] = fromSignal(new AbortController().signal, child)
  console.log(d, c, fromAbort.isDone(), polyctx.todo(), new Canceled({ cause: 1 }).name)
  // @ts-expect-error: a key's values have its type
  withValue(background(), traceId, 42)
  // @ts-expect-error: keys come from createKey
  ctx.value('trace-id')
  // @ts-expect-error: contexts come from the with* functions
  new polyctx.Context()
}

export async function patterns(): Promise<void> {
  const { Group, group, retry, Backoff, RetryError, sleep, waitFor, debug } = polyctx
  const g = new Group(background(), { limit: 2 })
  const answer: Promise<string> = g.go(async (ctx: Context) => (await sleep(ctx, 1), 'ok'))
  await g.wait()
  const lengths: number[] = await group(background(), ['a', 'bb'].map((s) => async (ctx: Context) => s.length))
  const n: number = await retry(background(), async (attempt: number) => attempt, {
    retryable: (e) => e instanceof Error,
    backoff: { initial: 10, maxAttempts: 3 },
  })
  const next: number | 'attempts' | 'deadline' | 'canceled' = new Backoff().next(background(), 1)
  const value: string = await waitFor(background(), answer)
  try {
    await retry(background(), () => 1, { retryable: () => false })
  } catch (e) {
    if (e instanceof RetryError) console.log(e.reason, e.attempts, e.lastError, e.cause)
  }
  // @ts-expect-error: retry needs to be told what is retryable
  await retry(background(), () => 1)
  debug.track(true)
  for (const c of debug.snapshot().running) console.log(c.kind, c.site, c.deadlineInMs)
  debug.onLostCancel((lost) => console.log(lost.context, lost.site))
  console.log(lengths, n, next, value, debug.lostCancels(), debug.liveTimers(), debug.pendingAfterFuncs())
}
