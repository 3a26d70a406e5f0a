/**
 * A replica storage whose writes, once `hold()` is called, land one at a time, oldest first,
 * when the test says: IndexedDB or LevelDB under load, made deterministic.
 */
import type { KVStore } from "../../core/index.js"
import { MemoryStorage } from "../../adapters/memory/index.js"

export const heldDisk = () => {
  const inner = new MemoryStorage()
  const queue: Array<() => Promise<void>> = []
  let held = false
  const storage: KVStore = {
    get: (k) => inner.get(k),
    range: (o) => inner.range(o),
    close: () => inner.close(),
    claim: () => inner.claim(),
    batch: (ops, o) => {
      if (!held) return inner.batch(ops, o)
      const copy = ops.map((op) => ({ ...op }))
      return new Promise<void>((resolve, reject) => queue.push(() => inner.batch(copy, o).then(resolve, reject)))
    },
  }
  const tick = () => new Promise((r) => setImmediate(r))
  return {
    storage,
    inner,
    hold: () => {
      held = true
    },
    get waiting() {
      return queue.length
    },
    /** Lands every waiting write in order (and those made meanwhile), then lets writes land at once. */
    release: async () => {
      for (let i = 0; i < 1000 && queue.length > 0; i++) {
        await queue.shift()!()
        for (let j = 0; j < 5; j++) await tick()
      }
      held = false
    },
  }
}
