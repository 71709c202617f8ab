// The Node smoke test of the installed npm packages: node smoke.mjs VERSION
//
// Derives a context with a deadline and a cause, cancels a child of it with
// another cause, and observes both errors and both causes; a timer working
// under the deadline is stopped by it. The package must be VERSION, and
// loaded from the platform package (run with NAPI_RS_ENFORCE_VERSION_CHECK=1,
// napi's loader also refuses a platform package of another version).
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import { background, withTimeout, withCancelCause, cause, Canceled, DeadlineExceeded } from 'polyctx'

const require = createRequire(import.meta.url)
const [expected] = process.argv.slice(2)
const pkg = require('polyctx/package.json')
assert.equal(pkg.version, expected)
const platform = Object.keys(pkg.optionalDependencies ?? {})
assert.equal(platform.length, 1, 'one platform package')
assert.equal(require(`${platform[0]}/package.json`).version, expected)
assert.equal(require('polyctx').background, background, 'require and import give one module')

const [request, cancelRequest] = withTimeout(background(), 200, new Error('budget spent'))
try {
  const [call, cancelCall] = withCancelCause(request)
  cancelCall(new Error('client went away'))
  assert.ok(call.err() instanceof Canceled)
  assert.equal(cause(call).message, 'client went away')
  assert.equal(request.err(), null, 'cancelling a child never cancels its parent')

  const err = await sleep(60_000, undefined, { signal: request.signal }).catch((e) => e)
  assert.equal(err.name, 'AbortError')
  assert.ok(request.err() instanceof DeadlineExceeded)
  assert.equal(request.err().message, 'context deadline exceeded: budget spent')
  assert.equal(cause(request).message, 'budget spent')
} finally {
  cancelRequest()
}
console.log(`node ${process.version}: polyctx ${pkg.version} (${platform[0]}): ok`)
