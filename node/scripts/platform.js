'use strict'
// The file name the generated loader (native.js) looks for first:
// polyctx.<platform>.node in the package directory. Shared by the install
// script, which puts the built module there, and index.js, which says so
// when it is missing.

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

module.exports = { binaryName }
