// Type declarations for polyctx/wire (also `polyctx.wire`): what crosses
// between services. Nanoseconds are bigints; policy durations are
// milliseconds, as everywhere else in polyctx's JS API.
import type { Context, CancelCauseFunc } from './index.js'

export { EndReason } from './index.js'

/** Header containers `extract` reads: Headers, node's IncomingHttpHeaders (or `headersDistinct`), a Map, an object, `[name, value]` pairs, or gRPC Metadata. */
export type InboundHeaders =
  | Headers
  | Map<string, string | string[]>
  | ReadonlyArray<readonly [string, string]>
  | { readonly [name: string]: string | string[] | undefined }
  | { getMap(): unknown; get(name: string): Array<string | Buffer> }

/** Containers `inject` writes into: Headers, a Map, an object, an array of pairs, gRPC Metadata, or an http.OutgoingMessage. */
export type OutboundHeaders =
  | Headers
  | Map<string, string>
  | Array<[string, string]>
  | { [name: string]: string | string[] | number | undefined }
  | { set(name: string, value: string): unknown }
  | { setHeader(name: string, value: string): unknown }

/** Which protocol a request speaks: decides the timeout header (request-timeout-ms, grpc-timeout, connect-timeout-ms). */
export type Protocol = 'http' | 'grpc' | 'connect'

/**
 * A header value that is present but does not follow its grammar. For the
 * protocol's own timeout header it fails the request: gRPC INTERNAL (13),
 * Connect invalid_argument, HTTP 400.
 */
export declare class MalformedHeader extends TypeError {
  constructor(message: string, details?: { header?: string; value?: string })
  readonly code: 'ERR_POLYCTX_MALFORMED_HEADER'
  /** The header's name, lowercase. */
  readonly header: string
  /** The offending value (possibly truncated). */
  readonly value: string
  readonly grpcCode: number
  readonly connectCode: string
  readonly httpStatus: number
  /** `httpStatus`, for Express and http-errors. */
  readonly status: number
  /** `httpStatus`, for Fastify. */
  readonly statusCode: number
}

/** A `grpc-timeout` value in nanoseconds; `null` when empty. Throws `MalformedHeader`; saturates at 2^63-1. */
export declare function parseGrpcTimeout(value: string): bigint | null
/** A remaining budget as a `grpc-timeout` value (finest unit that fits 8 digits, rounded up, capped); `null` when nothing is left. */
export declare function formatGrpcTimeout(remainingNs: bigint | number): string | null
/** A `connect-timeout-ms` / `request-timeout-ms` value in nanoseconds; `null` when empty. Throws `MalformedHeader` naming `header`. */
export declare function parseTimeoutMs(value: string, header?: 'request-timeout-ms' | 'connect-timeout-ms'): bigint | null
/** A remaining budget in whole milliseconds, rounded up (under 1 ms is `'1'`); `null` when nothing is left. */
export declare function formatTimeoutMs(remainingNs: bigint | number): string | null

/** One hop of a W3C trace. */
export declare class TraceContext {
  /** Throws RangeError unless the ids are lowercase hex (32 and 16 digits), neither all zero, and `flags` is a byte. */
  constructor(traceId: string, spanId: string, flags?: number)
  readonly traceId: string
  readonly spanId: string
  readonly flags: number
  readonly sampled: boolean
  /** The `traceparent` value: version 00, lowercase, flags masked to 0x03. */
  toHeader(): string
  /** A new trace: random ids, sampled. */
  static random(): TraceContext
}

/** Field values: one string, several (in order), or none. */
export type FieldValues = string | readonly string[] | null | undefined

/** The trace context in `traceparent` field values; `null` when absent, invalid, or when several values differ. */
export declare function parseTraceparent(values: FieldValues): TraceContext | null
/** `tracestate` as `[key, value]` pairs; `null` when it must be dropped whole. */
export declare function parseTracestate(values: FieldValues): Array<[string, string]> | null

/** One baggage member's value and its properties. */
export declare class BaggageEntry {
  constructor(value: string, properties?: Iterable<readonly [string, string | null | undefined]>)
  readonly value: string
  readonly properties: ReadonlyArray<readonly [string, string | null]>
}

/** Baggage to format or set: a Map, an object, or `[key, value]` pairs; values strings or entries. */
export type BaggageInput =
  | Map<string, string | BaggageEntry>
  | { readonly [key: string]: string | BaggageEntry }
  | Iterable<readonly [string, string | BaggageEntry]>

/** Baggage field values as key -> entry, in order; what is invalid is dropped as W3C says. */
export declare function parseBaggage(values: FieldValues): Map<string, BaggageEntry>
/** The `baggage` value (percent-encoded, within the limits); `null` when empty. Throws `MalformedHeader` for a key that is not an HTTP token. */
export declare function formatBaggage(entries: BaggageInput): string | null

/** Options of a trust policy. Durations are milliseconds; `null` for none. */
export interface PolicyOptions {
  /** Inbound budgets longer than this are cut to it (external default 300,000 ms). */
  maxTimeout?: number | null
  /** The budget of a request that sent none (external default 30,000 ms). */
  defaultTimeout?: number | null
  /** Inbound baggage keys kept from external callers. */
  baggageAllow?: readonly string[]
  /** Read and write traceparent, tracestate and baggage (default true; false where OpenTelemetry owns them). */
  propagateTrace?: boolean
}

/** How much a listener trusts its callers, or a client its destination. */
export declare class Policy {
  constructor(trust: 'internal' | 'external', options?: PolicyOptions)
  readonly trust: 'internal' | 'external'
  /** Milliseconds, or null. */
  readonly maxTimeout: number | null
  /** Milliseconds, or null. */
  readonly defaultTimeout: number | null
  readonly baggageAllow: readonly string[]
  readonly propagateTrace: boolean
  /** Peers inside the same system: budgets, traces and baggage flow as sent. */
  static internal(options?: PolicyOptions): Policy
  /** Anyone (the default for a listener): budgets clamped and defaulted, trace restarted, baggage dropped but for `baggageAllow`, only the budget and traceparent sent. */
  static external(options?: PolicyOptions): Policy
  /** This policy with trace and baggage propagation off. */
  withoutTrace(): Policy
}

export interface ExtractOptions {
  /** Default 'http'. */
  protocol?: Protocol
  /** When the headers arrived, from `clockNs()` (default now). */
  arrivedAt?: bigint
}

/**
 * The request context for inbound headers, derived from `parent`: the
 * caller's budget (shortest valid timeout header, under `policy`, counted
 * from `arrivedAt`), trace context and baggage. `policy` defaults to
 * `Policy.external()`. Throws `MalformedHeader` when the protocol's own
 * timeout header is malformed.
 */
export declare function extract(
  parent: Context,
  headers: InboundHeaders | null | undefined,
  policy?: Policy,
  options?: ExtractOptions,
): [Context, CancelCauseFunc]
/**
 * Writes the remaining budget (and, under `policy`, trace context and
 * baggage) into `headers` and returns them; `policy` defaults to
 * `Policy.internal()`. Throws the context's error (`DeadlineExceeded` when
 * no time is left) and writes nothing when the call must not be sent.
 */
export declare function inject<H extends OutboundHeaders>(ctx: Context, headers: H, policy?: Policy, options?: { protocol?: Protocol }): H
/** Now on the core's clock, in nanoseconds (for `extract`'s `arrivedAt`). */
export declare function clockNs(): bigint
/** This hop's trace context, or `null`. */
export declare function traceContext(ctx: Context): TraceContext | null
/** The caller's trace context when an external listener restarted the trace, or `null`. */
export declare function traceLink(ctx: Context): TraceContext | null
/** The baggage `ctx` carries. */
export declare function baggage(ctx: Context): Map<string, BaggageEntry>
/** A child of `ctx` whose trace context is `trace`. */
export declare function withTraceContext(ctx: Context, trace: TraceContext): Context
/** A child of `ctx` whose baggage is `entries`. */
export declare function withBaggage(ctx: Context, entries: BaggageInput): Context
/** The header names polyctx reads and writes, lowercase. */
export declare const HEADER_NAMES: readonly string[]
