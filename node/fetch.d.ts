// Type declarations for polyctx/fetch: fetch under a context.
import type { Context } from './index.js'
import type { Policy } from './wire.js'

export interface FetchOptions {
  /** Trust of the destination (default `Policy.external()`: the budget and traceparent only). */
  policy?: Policy
  /** 'http' sends request-timeout-ms, 'connect' connect-timeout-ms (default 'http'). */
  protocol?: 'http' | 'connect'
  /** The fetch to call (default `globalThis.fetch`; undici's works too). */
  fetch?: (input: any, init?: any) => Promise<Response>
}

/**
 * `fetch(input, init)` under `ctx`: the remaining budget (and trace context,
 * under the policy) in the headers, `ctx.signal` as the signal. Rejects with
 * the context's error, sending nothing, when no time is left; an abort
 * rejects with the signal's reason.
 */
export declare function fetch(ctx: Context, input: string | URL | Request, init?: RequestInit, options?: FetchOptions): Promise<Response>
/** A fetch bound to `ctx`. */
export declare function bind(ctx: Context, options?: FetchOptions): (input: string | URL | Request, init?: RequestInit) => Promise<Response>
