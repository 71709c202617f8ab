// Memory measurements shared by the leak test (test/memory.test.mjs) and
// the benchmark (bench.mjs). Needs `node --expose-gc`.

/**
 * Collects until the heap stops shrinking (finalizers run between
 * collections) and `done()`, if given, is true; at most 200 rounds (a
 * loaded machine runs finalizers late; a settled heap ends it in a few).
 */
export async function settle(done = () => true) {
  let last = Infinity
  for (let i = 0; i < 200; i++) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
    const used = process.memoryUsage().heapUsed
    if (i >= 4 && used >= last - 1024 && done()) break
    last = used
  }
}

/**
 * Creates `count` children of `parent` with `derive(parent)` and drops each
 * (unless `retain`, the control that must show a leak), yielding now and
 * then so that finalizers can run, as they do in a real program. Returns the
 * heap and RSS kept per child once everything is collected, and, given
 * `counts()` (numbers by name, such as live handles), how each grew: the
 * collection waits (boundedly) for them to come back.
 */
export async function retainedPerChild({ count, derive, retain = false, counts, native }) {
  const kept = []
  await settle()
  const before = process.memoryUsage()
  const nativeBefore = native?.()
  const countsBefore = counts?.()
  for (let i = 0; i < count; i++) {
    const child = derive()
    if (retain) kept.push(child)
    if (i % 10_000 === 9_999) await new Promise((resolve) => setImmediate(resolve))
  }
  const grown = () => Object.fromEntries(Object.entries(counts()).map(([k, v]) => [k, v - countsBefore[k]]))
  await settle(() => retain || counts === undefined || Object.values(grown()).every((n) => n <= 0))
  const after = process.memoryUsage()
  const result = {
    heap: (after.heapUsed - before.heapUsed) / count,
    rss: (after.rss - before.rss) / count,
  }
  if (native !== undefined) result.native = (native() - nativeBefore) / count
  if (counts !== undefined) result.grown = grown()
  kept.length = 0
  return result
}

/**
 * Heap and RSS per live child, `count` of them kept alive at once; given
 * `native()` (bytes of native memory in use), that per child too.
 */
export async function livePerChild({ count, derive, native }) {
  await settle()
  const before = process.memoryUsage()
  const nativeBefore = native?.()
  const kept = new Array(count)
  for (let i = 0; i < count; i++) kept[i] = derive()
  await settle()
  const after = process.memoryUsage()
  const result = { heap: (after.heapUsed - before.heapUsed) / count, rss: (after.rss - before.rss) / count }
  if (native !== undefined) result.native = (native() - nativeBefore) / count
  kept.length = 0
  return result
}
