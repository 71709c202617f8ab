// The ES module face of polyctx/fetch: the same objects as require('polyctx/fetch').
import m from './fetch.js'

export const {
  fetch,
  bind,
} = m

export default m
