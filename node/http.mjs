// The ES module face of polyctx/http: the same objects as require('polyctx/http').
import m from './http.js'

export const {
  requestContext,
  contextOf,
  middleware,
  handler,
  fastifyPlugin,
  stats,
} = m

export default m
