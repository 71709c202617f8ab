// Memory measurements shared by the leak test (test/memory.test.mjs) and
// the benchmark (bench.mjs). Needs `node --expose-gc`.

/** Collects until the heap stops shrinking: finalizers run between collections. */
export async function settle() {
  let last = Infinity
  for (let i = 0; i < 20; i++) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
    const used = process.memoryUsage().heapUsed
    if (i >= 4 && used >= last - 1024) break
    last = used
  }
}

/**
 * Creates `count` children of `parent` with `derive(parent)` and drops each
 * (unless `retain`, the control that must show a leak), yielding now and
 * then so that finalizers can run, as they do in a real program. Returns the
 * heap and RSS kept per child once everything is collected.
 */
export async function retainedPerChild({ count, derive, retain = false }) {
  const kept = []
  await settle()
  const before = process.memoryUsage()
  for (let i = 0; i < count; i++) {
    const child = derive()
    if (retain) kept.push(child)
    if (i % 10_000 === 9_999) await new Promise((resolve) => setImmediate(resolve))
  }
  await settle()
  const after = process.memoryUsage()
  const result = {
    heap: (after.heapUsed - before.heapUsed) / count,
    rss: (after.rss - before.rss) / count,
  }
  kept.length = 0
  return result
}

/** Heap and RSS per live child, `count` of them kept alive at once. */
export async function livePerChild({ count, derive }) {
  await settle()
  const before = process.memoryUsage()
  const kept = new Array(count)
  for (let i = 0; i < count; i++) kept[i] = derive()
  await settle()
  const after = process.memoryUsage()
  const result = { heap: (after.heapUsed - before.heapUsed) / count, rss: (after.rss - before.rss) / count }
  kept.length = 0
  return result
}
