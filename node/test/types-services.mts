// Type-checked by `make lint` (tsc), never run: the declarations of the wire
// model, the service integrations and the C handoff let code use them as
// the README does, and reject misuse.
import http from 'node:http'
import Fastify from 'fastify'
import grpc from '@grpc/grpc-js'
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { background, withTimeout, current, run, toC, fromC, cLibrary, stats, EndReason, wire, type Context } from 'polyctx'
import { Policy, extract, inject, parseGrpcTimeout, formatTimeoutMs, TraceContext, parseBaggage, formatBaggage, BaggageEntry, MalformedHeader } from 'polyctx/wire'
import { middleware, handler, fastifyPlugin, requestContext, stats as requestStats } from 'polyctx/http'
import { fetch } from 'polyctx/fetch'
import { callOptions, interceptor, unary } from 'polyctx/grpc'
import { DeadlinePropagator, toOtel, fromOtel } from 'polyctx/otel'

export async function main(): Promise<void> {
  const ns: bigint | null = parseGrpcTimeout('1S')
  const ms: string | null = formatTimeoutMs(1_500_000_000n)
  const tc = new TraceContext('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1)
  const sampled: boolean = tc.sampled
  const b: Map<string, BaggageEntry> = parseBaggage(['k=v'])
  const text: string | null = formatBaggage({ k: 'v', p: new BaggageEntry('x', [['q', null]]) })
  const policy = Policy.external({ maxTimeout: 60_000, defaultTimeout: 5_000, baggageAllow: ['tenant'] })
  const [ctx, cancel] = extract(background(), { 'request-timeout-ms': '1500' }, policy, { protocol: 'http' })
  const headers: Headers = inject(ctx, new Headers(), Policy.internal())
  cancel(EndReason.clientDisconnected)
  const status: number | undefined = EndReason.of(ctx)?.httpStatus
  const err = new MalformedHeader('x', { header: 'grpc-timeout', value: 'x' })
  console.log(ns, ms, sampled, b, text, headers, status, err.httpStatus, wire.Policy === Policy)

  const use: (req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void) => void = middleware({
    policy: Policy.internal(),
  })
  const r = await fetch(current(), 'http://127.0.0.1:1/', undefined, { policy: Policy.internal() })
  http.createServer(handler((req, res, c: Context) => res.end(String(c.deadline()))))
  http.createServer((req, res) => requestContext(req, res))
  const fastify = Fastify()
  await fastify.register(fastifyPlugin, { policy: Policy.internal() })
  const inFlight: number = requestStats().inFlight

  const client = new grpc.Client('127.0.0.1:1', grpc.credentials.createInsecure(), { interceptors: [interceptor()] })
  const [t] = withTimeout(background(), 100)
  const opts = callOptions(t, { propagate_flags: 0 })
  const handlerFn = unary((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>, c: Context) => callback(null, c))
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new DeadlinePropagator()] })
  const o = toOtel(t)
  const back: Context = fromOtel(o)

  const ptr: bigint = toC(t)
  const same: Context = fromC(ptr)
  const path: string = cLibrary()
  const live: number = stats().deadlines
  run(t, () => current().isDone())
  console.log(use, await r.text(), inFlight, client, opts.deadline, handlerFn, back, same, path, live)
  // @ts-expect-error: nanoseconds are bigints or integers, not strings
  formatTimeoutMs('5')
  // @ts-expect-error: policies come from Policy
  extract(background(), {}, { trust: 'internal' })
  // @ts-expect-error: a ctx_t* is a bigint
  fromC(5)
}
