'use strict'
// Packs the npm packages the way @napi-rs/cli lays out prebuilt binaries:
//
//   polyctx-<version>.tgz                the JS package: its `files`, README,
//                                        package.json without scripts or dev
//                                        dependencies, and an optional
//                                        dependency on the platform package
//   polyctx-<platform>-<version>.tgz     npm/<platform>/ and the .node file
//
//   node scripts/pack.js --binary FILE --stage DIR --out DIR
//
// `make dist` runs it with a stripped release build of the module. The
// published package has no install script: npm picks the platform package
// by its `os`, `cpu` and `libc`, and native.js loads it. Building from
// source stays the checkout's business (scripts/install.js).
//
// `npm pack` in node/ itself would give a package with an install script
// that needs the whole workspace; the prepack script (--refuse) stops it
// and says what to run instead.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { binaryName, platformPackage } = require('./platform.js')

const here = path.resolve(__dirname, '..')

function fail(text) {
  console.error(`pack: ${text}`)
  process.exit(1)
}

function parseArgs(argv) {
  const args = {}
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '')
    if (name === 'refuse') args.refuse = true
    else if (['binary', 'stage', 'out'].includes(name) && i + 1 < argv.length) args[name] = path.resolve(argv[++i])
    else fail(`unknown argument ${argv[i]}; usage: pack.js --binary FILE --stage DIR --out DIR`)
  }
  return args
}

/** The files `files` names: plain paths, and `*.ext` in the package root. */
function listed(files) {
  const root = fs.readdirSync(here)
  return files.flatMap((entry) => {
    if (!entry.includes('*')) return [entry]
    if (!/^\*\.[\w.]+$/.test(entry)) fail(`files: only plain paths and root-level *.ext are supported, not ${entry}`)
    const ext = entry.slice(1)
    return root.filter((f) => f.endsWith(ext) && fs.statSync(path.join(here, f)).isFile())
  })
}

function copy(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true })
  fs.copyFileSync(from, to)
}

function npmPack(dir, out) {
  const run = spawnSync(process.env.NPM || 'npm', ['pack', '--json', '--pack-destination', out], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  })
  if (run.error || run.status !== 0) fail(`npm pack in ${dir} failed: ${run.error?.message ?? `status ${run.status}`}`)
  const [{ filename, files }] = JSON.parse(run.stdout)
  console.log(`pack: ${path.join(path.relative(process.cwd(), out) || '.', filename)} (${files.length} files)`)
}

function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.refuse) {
    fail(
      'this directory is the source of the npm package, not the package: packed as is, it would build\n' +
        '  from source on install and need the whole repository. Run `make dist` at the repository root;\n' +
        '  it writes dist/polyctx-<version>.tgz and the platform package beside it.',
    )
  }
  for (const name of ['binary', 'stage', 'out']) if (!args[name]) fail(`--${name} is required`)
  const pkg = JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8'))
  const platformName = platformPackage(pkg)
  const platformDir = path.join(here, 'npm', platformName.slice(`${pkg.napi?.packageName ?? pkg.name}-`.length))
  if (!fs.existsSync(platformDir)) fail(`no platform package for this platform: ${platformDir} is missing`)
  const platform = JSON.parse(fs.readFileSync(path.join(platformDir, 'package.json'), 'utf8'))
  if (platform.main !== binaryName()) fail(`${platformDir}/package.json: main is ${platform.main}, not ${binaryName()}`)

  fs.rmSync(args.stage, { recursive: true, force: true })
  const main = path.join(args.stage, pkg.name)
  for (const file of [...listed(pkg.files), 'README.md']) copy(path.join(here, file), path.join(main, file))
  const published = { ...pkg, optionalDependencies: { [platformName]: pkg.version } }
  delete published.scripts
  delete published.devDependencies
  fs.writeFileSync(path.join(main, 'package.json'), `${JSON.stringify(published, null, 2)}\n`)

  const native = path.join(args.stage, platformName)
  for (const file of ['package.json', 'README.md']) copy(path.join(platformDir, file), path.join(native, file))
  copy(args.binary, path.join(native, platform.main))

  fs.mkdirSync(args.out, { recursive: true })
  npmPack(main, args.out)
  npmPack(native, args.out)
}

main()
