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
