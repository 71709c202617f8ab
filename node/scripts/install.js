'use strict'
// `npm install` of this package builds the native module from source.
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
// POLYCTX_NODE_PROFILE=debug builds the debug profile instead (for hacking
// on the crate; the package's tests and benchmarks expect release).

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const here = path.resolve(__dirname, '..')
const profile = process.env.POLYCTX_NODE_PROFILE === 'debug' ? 'debug' : 'release'
const cargo = process.env.CARGO || 'cargo'

function run(args, opts = {}) {
  return execFileSync(cargo, args, { cwd: here, stdio: ['ignore', 'pipe', 'inherit'], ...opts })
}

function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function libraryName(crate) {
  const base = crate.replace(/-/g, '_')
  if (process.platform === 'win32') return `${base}.dll`
  if (process.platform === 'darwin') return `lib${base}.dylib`
  return `lib${base}.so`
}

const args = ['build', '--locked', '-p', 'polyctx-node']
if (profile === 'release') args.push('--release')
console.error(`polyctx: building the native module (cargo ${args.join(' ')})`)
execFileSync(cargo, args, { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] })

const metadata = JSON.parse(run(['metadata', '--format-version', '1', '--no-deps', '--locked']).toString())
const built = path.join(metadata.target_directory, profile, libraryName('polyctx-node'))
const dest = path.join(here, `polyctx.${platformSuffix()}.node`)
// Copy to a temporary name and rename, so that a process that has the old
// module loaded keeps a valid mapping and never sees a half-written file.
const tmp = `${dest}.${process.pid}.tmp`
fs.copyFileSync(built, tmp)
fs.renameSync(tmp, dest)
console.error(`polyctx: installed ${path.relative(process.cwd(), dest) || dest}`)
