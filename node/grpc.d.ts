// Type declarations for polyctx/grpc: contexts across @grpc/grpc-js calls.
// Structural types, so that @grpc/grpc-js stays an optional peer.
import type { Context, CancelCauseFunc } from './index.js'
import type { Policy } from './wire.js'

/** Call options for `ctx`: its deadline, and the context for `interceptor()`. */
export declare function callOptions<T extends object = {}>(ctx: Context, extra?: T): T & { deadline?: Date }
/**
 * A grpc-js client interceptor: sends the trace context (and, to internal
 * destinations, baggage) as metadata, cancels the call when its context is
 * done, fails it locally with DEADLINE_EXCEEDED when no time is left.
 */
export declare function interceptor(options?: { policy?: Policy }): (options: any, nextCall: (options: any) => any) => any
/** A grpc-js server call: what `serverContext` reads. */
export interface ServerCall {
  readonly metadata: unknown
  readonly cancelled: boolean
  getDeadline(): Date | number
  once(event: 'cancelled', listener: () => void): unknown
  removeListener(event: 'cancelled', listener: () => void): unknown
}
/** The context of a server call: deadline, trace, baggage; canceled with EndReason.peerCanceled when the client cancels. */
export declare function serverContext(call: ServerCall, options?: { policy?: Policy; parent?: Context }): [Context, CancelCauseFunc]
/** Wraps a unary handler: `handler(call, callback, ctx)`; the context ends with requestFinished once answered. */
export declare function unary<Call extends ServerCall, Callback extends (...args: any[]) => void>(
  handler: (call: Call, callback: Callback, ctx: Context) => unknown,
  options?: { policy?: Policy; parent?: Context },
): (call: Call, callback: Callback) => unknown
