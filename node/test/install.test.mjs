// Building from source fails with a message that says what is missing and
// how to fix it, never a stack trace: no cargo, a failing build, no binary;
// so does the published package without its platform package.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const { platformPackage } = createRequire(import.meta.url)('../scripts/platform.js')

const pkg = dirname(dirname(fileURLToPath(import.meta.url)))

function install(env) {
  const { CARGO, ...rest } = process.env
  return spawnSync(process.execPath, [join(pkg, 'scripts', 'install.js')], {
    cwd: pkg,
    env: { ...rest, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
}

function assertNoStack(stderr) {
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace')
}

test('no cargo on PATH: says Rust is needed and where to get it', () => {
  const empty = mkdtempSync(join(tmpdir(), 'polyctx-path-'))
  const run = install({ PATH: empty })
  rmSync(empty, { recursive: true, force: true })
  assert.equal(run.status, 1)
  assert.match(run.stderr, /polyctx: cannot build the native module: `cargo` is not on PATH/)
  assert.match(run.stderr, /needs Rust 1\.88 or newer \(https:\/\/rustup\.rs\)/)
  assert.match(run.stderr, /then run `npm install` again/)
  assertNoStack(run.stderr)
})

test('CARGO pointing nowhere, or a failing build: says which', () => {
  const missing = install({ CARGO: '/nonexistent/cargo' })
  assert.equal(missing.status, 1)
  assert.match(missing.stderr, /CARGO=\/nonexistent\/cargo does not exist/)
  assertNoStack(missing.stderr)
  const failing = install({ CARGO: 'false' })
  assert.equal(failing.status, 1)
  assert.match(failing.stderr, /`false build --locked -p polyctx-node --release` failed \(exit status 1\) while trying to build the native module; its errors are above/)
  assertNoStack(failing.stderr)
})

/** Loads a copy of the package without its native module; returns the failed run. */
function loadWithout(editPackage) {
  const dir = mkdtempSync(join(tmpdir(), 'polyctx-nobinary-'))
  try {
    for (const file of ['index.js', 'internal.js', 'native.js', join('scripts', 'platform.js')]) {
      mkdirSync(dirname(join(dir, file)), { recursive: true })
      cpSync(join(pkg, file), join(dir, file))
    }
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'))
    writeFileSync(join(dir, 'package.json'), JSON.stringify(editPackage(manifest)))
    const run = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(dir)})`], { encoding: 'utf8', timeout: 60_000 })
    assert.notEqual(run.status, 0)
    assert.doesNotMatch(run.stderr.split('\n').find((l) => l.startsWith('Error')) ?? '', /optional dependencies \(https/)
    return run.stderr
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('a checkout without its native module says so when loaded, not "npm has a bug"', () => {
  const stderr = loadWithout((m) => m)
  assert.match(stderr, /polyctx: the native module polyctx\.[\w-]+\.node is missing from /)
  assert.match(stderr, /run `npm rebuild polyctx`/)
})

test('the published package without its platform package names the package to install', () => {
  const stderr = loadWithout((m) => ({ ...m, optionalDependencies: { [platformPackage(m)]: m.version } }))
  assert.match(stderr, new RegExp(`comes in the package ${platformPackage({ name: 'polyctx' })}, which is not installed`))
  assert.match(stderr, /--omit=optional/)
  assert.match(stderr, /build it from source: clone https:\/\/github\.com\/polyctx\/polyctx/)
})

test('the published package on a platform with nothing prebuilt says to build from source', () => {
  const stderr = loadWithout((m) => ({ ...m, optionalDependencies: { 'polyctx-plan9-mips': m.version } }))
  assert.match(stderr, /there is no prebuilt native module for [\w-]+ \(prebuilt: plan9-mips\); build it from source/)
  assert.match(stderr, /needs Rust 1\.88 or newer/)
})

test('npm pack in the source directory refuses, and says to run make dist', () => {
  const run = spawnSync(process.execPath, [join(pkg, 'scripts', 'pack.js'), '--refuse'], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(run.status, 1)
  assert.match(run.stderr, /Run `make dist` at the repository root/)
  assertNoStack(run.stderr)
  assert.equal(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).scripts.prepack, 'node scripts/pack.js --refuse')
})
