// Type declarations for polyctx/http: a context per incoming request.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Context } from './index.js'
import type { Policy, Protocol } from './wire.js'

export type Request = IncomingMessage | Http2ServerRequest
export type Response = ServerResponse | Http2ServerResponse

export interface RequestContextOptions {
  /** Trust policy for inbound headers (default `Policy.external()`). */
  policy?: Policy
  /** Which timeout header is the request's own (default 'http': request-timeout-ms). */
  protocol?: Protocol
  /** What request contexts derive from (default `background()`), e.g. a server-wide context canceled on shutdown. */
  parent?: Context
}

export interface MiddlewareOptions extends RequestContextOptions {
  /** The request property that holds the context (default 'ctx'; false for none). */
  property?: string | false
}

/**
 * The context of an incoming request: made on first call from its headers,
 * then the same one. Canceled with EndReason.clientDisconnected when the
 * client goes away first, EndReason.requestFinished when the response is
 * complete. Throws `MalformedHeader` (status 400) for a malformed timeout header.
 */
export declare function requestContext(req: Request, res: Response, options?: RequestContextOptions): Context
/** The context made for `req`, or `undefined`. */
export declare function contextOf(req: Request): Context | undefined
/** Express / Connect middleware: `req.ctx`, and `current()` for everything after it. */
export declare function middleware(
  options?: MiddlewareOptions,
): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
/** Wraps a node:http (or http2 compatibility) handler: `fn(req, res, ctx)` runs with the context as `current()`; a malformed timeout header is answered with 400. */
export declare function handler<Req extends Request, Res extends Response>(
  fn: (req: Req, res: Res, ctx: Context) => unknown,
  options?: MiddlewareOptions,
): (req: Req, res: Res) => unknown
/** A Fastify plugin: `request.ctx` and `current()` in hooks and handlers; registered without encapsulation. */
export declare function fastifyPlugin(fastify: unknown, options: MiddlewareOptions | undefined, done: (err?: Error) => void): void
/** This process's request contexts: in flight now, and started, finished, disconnected and rejected since start. */
export declare function stats(): { inFlight: number; started: number; finished: number; disconnected: number; rejected: number }
