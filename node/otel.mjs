// The ES module face of polyctx/otel: the same objects as require('polyctx/otel').
import m from './otel.js'

export const {
  DeadlinePropagator,
  toOtel,
  fromOtel,
  POLYCTX_KEY,
} = m

export default m
