// Type-checked by `make lint` (tsc), never run: CommonJS code sees the same API.
import polyctx = require('polyctx')

const [ctx, cancel] = polyctx.withCancel(polyctx.background())
const signal: AbortSignal = ctx.signal
cancel()
const err: polyctx.Canceled | polyctx.DeadlineExceeded | null = ctx.err()
export = { signal, err }
