// Every JS example in the README's Node section, the Node guide (docs/node.md)
// and the npm page (node/README.md) runs once, as its own module, importing
// 'polyctx' the way a user's code does; the examples assert what they show.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, mkdtempSync, mkdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkg = dirname(dirname(fileURLToPath(import.meta.url)))
const readme = readFileSync(join(pkg, '..', 'README.md'), 'utf8')
const jsBlocks = (text) => [...text.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1])
// The README's "## Node" section (up to the next second-level heading), and
// the guide and the npm page whole.
const sources = {
  'README.md': jsBlocks(readme.split(/^## Node\n/m)[1].split(/^## /m)[0]),
  'docs/node.md': jsBlocks(readFileSync(join(pkg, '..', 'docs', 'node.md'), 'utf8')),
  'node/README.md': jsBlocks(readFileSync(join(pkg, 'README.md'), 'utf8')),
}
// Each example once, wherever it is shown.
const blocks = [...new Set(Object.values(sources).flat())]

test('the README, the guide and the npm page have examples', () => {
  assert.ok(sources['docs/node.md'].length >= 4, `the guide has ${sources['docs/node.md'].length}`)
  assert.ok(sources['README.md'].length >= 1)
  assert.equal(sources['node/README.md'].length, 1)
})

const dir = mkdtempSync(join(tmpdir(), 'polyctx-readme-'))
mkdirSync(join(dir, 'node_modules'))
symlinkSync(pkg, join(dir, 'node_modules', 'polyctx'))
// The frameworks the service examples use, from the package's pinned dev dependencies.
for (const name of ['express']) symlinkSync(join(pkg, 'node_modules', name), join(dir, 'node_modules', name))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))

blocks.forEach((code, i) => {
  const firstLine = code.split('\n').find((l) => l.trim() && !l.startsWith('//'))
  test(`README example ${i + 1}: ${firstLine}`, () => {
    const file = join(dir, `example-${i + 1}.${/\brequire\(/.test(code) ? 'cjs' : 'mjs'}`)
    writeFileSync(file, code)
    const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(run.status, 0, `${file} failed:\n${run.stdout}\n${run.stderr}`)
  })
})
