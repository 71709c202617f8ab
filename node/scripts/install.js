'use strict'
// `npm install <checkout>/node` builds the native module from source. The
// published package (`make dist` packs it: scripts/pack.js) has no install
// script: its native module comes prebuilt in a platform package.
//
// Why plain cargo rather than the napi CLI: npm does not install a
// dependency's devDependencies, and making @napi-rs/cli a real dependency
// would download its toolchain helpers into every user's node_modules just
// to run one cargo command. The CLI is needed only to regenerate the
// committed loader (native.js) and typings (native.d.ts), which `make lint`
// checks; building the module needs Rust alone. This script does what
// `napi build --platform --release` does for this crate: build the cdylib
// and put it where native.js looks first, ./polyctx.<platform>.node.
//
// Whatever goes wrong ends in one message that says what is missing and how
// to fix it, and exit status 1; never a stack trace.
//
// POLYCTX_NODE_PROFILE=debug builds the debug profile instead (for hacking
// on the crate; the package's tests and benchmarks expect release).

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { binaryName, RUST } = require('./platform.js')

const here = path.resolve(__dirname, '..')
const profile = process.env.POLYCTX_NODE_PROFILE === 'debug' ? 'debug' : 'release'
const cargo = process.env.CARGO || 'cargo'

function fail(text) {
  console.error(`polyctx: ${text}`)
  process.exit(1)
}

/** Runs cargo; returns its stdout, or fails with a message saying what went wrong. */
function runCargo(args, what, stdout = 'pipe') {
  const run = spawnSync(cargo, args, { cwd: here, stdio: ['ignore', stdout, 'inherit'], encoding: 'utf8' })
  if (run.error?.code === 'ENOENT') {
    fail(
      `cannot build the native module: ${process.env.CARGO ? `CARGO=${cargo} does not exist` : '`cargo` is not on PATH'}.\n` +
        `  polyctx builds its native module from source when it is installed, which needs ${RUST}.\n` +
        '  Install Rust, open a new shell (or run `. "$HOME/.cargo/env"`), then run `npm install` again;\n' +
        '  or set CARGO to the cargo to use.',
    )
  }
  if (run.error) fail(`cannot run ${cargo} to ${what}: ${run.error.message}`)
  if (run.status !== 0) {
    fail(
      `\`${cargo} ${args.join(' ')}\` failed (${run.signal ?? `exit status ${run.status}`}) while trying to ${what}; ` +
        `its errors are above. The build needs ${RUST}.`,
    )
  }
  return run.stdout
}

const args = ['build', '--locked', '-p', 'polyctx-node']
if (profile === 'release') args.push('--release')
console.error(`polyctx: building the native module (cargo ${args.join(' ')})`)
runCargo(args, 'build the native module', 'inherit')

let metadata
try {
  metadata = JSON.parse(runCargo(['metadata', '--format-version', '1', '--no-deps', '--locked'], 'find the build'))
} catch (e) {
  fail(`cannot read \`cargo metadata\`: ${e.message}`)
}
const built = path.join(metadata.target_directory, profile, libraryName('polyctx-node'))
if (!fs.existsSync(built)) fail(`cargo reported success, but the module it should have built is missing: ${built}`)
const dest = path.join(here, binaryName())
// Copy to a temporary name and rename, so that a process that has the old
// module loaded keeps a valid mapping and never sees a half-written file.
const tmp = `${dest}.${process.pid}.tmp`
try {
  fs.copyFileSync(built, tmp)
  fs.renameSync(tmp, dest)
} catch (e) {
  fail(`cannot install the built module as ${dest}: ${e.message}`)
}
console.error(`polyctx: installed ${path.relative(process.cwd(), dest) || dest}`)

function libraryName(crate) {
  const base = crate.replace(/-/g, '_')
  if (process.platform === 'win32') return `${base}.dll`
  if (process.platform === 'darwin') return `lib${base}.dylib`
  return `lib${base}.so`
}
