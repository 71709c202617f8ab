'use strict'
// Where the native module comes from, and what to say when it is missing.
//
// The generated loader (native.js) looks first for polyctx.<platform>.node in
// the package directory (a build from source: scripts/install.js puts it
// there), then for the platform package polyctx-<platform> (what npm installs
// from the registry or from `make dist`'s tarballs: the published package
// pins it as an optional dependency, the way @napi-rs/cli lays out prebuilt
// binaries). Shared by the install script, index.js and the pack script.

const fs = require('node:fs')
const path = require('node:path')

const RUST = 'Rust 1.88 or newer (https://rustup.rs)'

function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function binaryName() {
  return `polyctx.${platformSuffix()}.node`
}

/** The platform package's name for this platform (the napi CLI's naming). */
function platformPackage(pkg = require('../package.json')) {
  return `${pkg.napi?.packageName ?? pkg.name}-${platformSuffix()}`
}

/** Whether `name` resolves from the package directory `dir`. */
function resolvable(name, dir) {
  try {
    require.resolve(`${name}/package.json`, { paths: [dir] })
    return true
  } catch {
    return false
  }
}

/**
 * What index.js throws when native.js could not load a module. A module
 * that exists but fails to load (a libc too old, say) keeps the loader's own
 * error; a missing one gets a message that says where it should have come
 * from and how to get it, with the loader's error as its cause.
 */
function loadError(dir, cause) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  const local = binaryName()
  const wanted = platformPackage(pkg)
  if (fs.existsSync(path.join(dir, local)) || resolvable(wanted, dir)) return cause
  const prebuilt = Object.keys(pkg.optionalDependencies ?? {})
  const fromSource =
    `build it from source: clone ${pkg.repository ?? 'the polyctx repository'} and ` +
    `\`npm install <checkout>/node\`, which needs ${RUST}`
  let text
  if (prebuilt.length === 0) {
    // A checkout, installed from its directory: the install script builds it.
    text =
      `the native module ${local} is missing from ${dir}. ` +
      `It is built from source when the package is installed, which needs ${RUST}; ` +
      'if the install skipped it (--ignore-scripts) or failed, run `npm rebuild polyctx` and read its output.'
  } else if (prebuilt.includes(wanted)) {
    text =
      `the native module for this platform comes in the package ${wanted}, which is not installed. ` +
      `npm installs it with polyctx unless optional dependencies are left out (--omit=optional, --no-optional): ` +
      `run \`npm install ${wanted}@${pkg.version}\`, or ${fromSource}.`
  } else {
    text =
      `there is no prebuilt native module for ${platformSuffix()} (prebuilt: ` +
      `${prebuilt.map((p) => p.slice(`${pkg.napi?.packageName ?? pkg.name}-`.length)).join(', ')}); ${fromSource}.`
  }
  return new Error(`polyctx: ${text}`, { cause })
}

module.exports = { binaryName, platformPackage, loadError, RUST }
