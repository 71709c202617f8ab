// The ES module face of polyctx/wire: the same objects as require('polyctx/wire').
import wire from './wire.js'

export const {
  MalformedHeader,
  parseGrpcTimeout,
  formatGrpcTimeout,
  parseTimeoutMs,
  formatTimeoutMs,
  TraceContext,
  parseTraceparent,
  parseTracestate,
  BaggageEntry,
  parseBaggage,
  formatBaggage,
  Policy,
  extract,
  inject,
  clockNs,
  traceContext,
  traceLink,
  baggage,
  withTraceContext,
  withBaggage,
  EndReason,
  HEADER_NAMES,
} = wire

export default wire
