/**
 * A KVStore whose every call waits until the store is open (its format checked and any
 * migration finished): stores built on the same data (SnapshotStore) read nothing before.
 * Once open, calls go straight through, with no extra await on the write path.
 */
import type { BatchOp, BatchOptions, KVStore, RangeOptions } from "../ports/storage.js"

export const gatedKV = (kv: KVStore, open: () => Promise<void>, isOpen: () => boolean): KVStore => ({
  get: (key: Uint8Array) => (isOpen() ? kv.get(key) : open().then(() => kv.get(key))),
  batch: (ops: ReadonlyArray<BatchOp>, options?: BatchOptions) => {
    if (isOpen()) return kv.batch(ops, options)
    // The caller may reuse its buffers once this call returns: keep copies while waiting.
    const copies = ops.map((o): BatchOp => (o.type === "put" ? { type: "put", key: o.key.slice(), value: o.value.slice() } : { type: "del", key: o.key.slice() }))
    return open().then(() => kv.batch(copies, options))
  },
  range: (options: RangeOptions) => (isOpen() ? kv.range(options) : open().then(() => kv.range(options))),
  close: () => kv.close(),
})
