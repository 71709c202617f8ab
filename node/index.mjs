// The ES module face of polyctx: the same objects as require('polyctx').
import polyctx from './index.js'

export const {
  background,
  todo,
  withCancel,
  withCancelCause,
  withTimeout,
  withDeadline,
  withValue,
  withoutCancel,
  createKey,
  afterFunc,
  cause,
  fromSignal,
  current,
  run,
  toC,
  fromC,
  cLibrary,
  stats,
  Context,
  Key,
  ContextError,
  Canceled,
  DeadlineExceeded,
  EndReason,
  wire,
} = polyctx

export default polyctx
