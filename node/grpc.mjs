// The ES module face of polyctx/grpc: the same objects as require('polyctx/grpc').
import m from './grpc.js'

export const {
  callOptions,
  interceptor,
  serverContext,
  unary,
} = m

export default m
