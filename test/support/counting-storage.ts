/** A MemoryStorage whose reads are counted: a test asserts a document was not reloaded from storage. */
import { MemoryStorage } from "../../adapters/memory/index.js"
import type { KVStore } from "../../core/ports/storage.js"

export const countingStorage = (): { readonly storage: KVStore; readonly reads: () => number } => {
  const inner = new MemoryStorage()
  let reads = 0
  const storage: KVStore = {
    get: (k) => (reads++, inner.get(k)),
    range: (o) => (reads++, inner.range(o)),
    close: () => inner.close(),
    batch: (ops, o) => inner.batch(ops, o),
  }
  return { storage, reads: () => reads }
}
