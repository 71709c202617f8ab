// Type declarations for polyctx/otel: polyctx beside OpenTelemetry JS.
import type { Context as OtelContext, TextMapGetter, TextMapPropagator, TextMapSetter } from '@opentelemetry/api'
import type { Context } from './index.js'
import type { Policy, Protocol } from './wire.js'

/** The deadline as a TextMapPropagator, for your CompositePropagator. */
export declare class DeadlinePropagator implements TextMapPropagator {
  constructor(options?: { policy?: Policy; protocol?: Protocol })
  inject(context: OtelContext, carrier: unknown, setter: TextMapSetter): void
  extract(context: OtelContext, carrier: unknown, getter: TextMapGetter): OtelContext
  fields(): string[]
}
/** An OpenTelemetry context holding `ctx` (and its trace context, if it has no span). */
export declare function toOtel(ctx: Context, otelContext?: OtelContext): OtelContext
/** The polyctx context in an OpenTelemetry context (else `parent`), carrying its span's trace context. */
export declare function fromOtel(otelContext?: OtelContext, parent?: Context): Context
/** Where a polyctx context lives in an OpenTelemetry context. */
export declare const POLYCTX_KEY: symbol
