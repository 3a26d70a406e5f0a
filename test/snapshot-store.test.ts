/**
 * SnapshotStore.compact: each compaction deletes the entries from where the previous one
 * stopped up to its horizon, reading nothing below that (in LevelDB, reading from the log's
 * first key walks the deletion marker of every entry compacted before); a compaction cut by
 * a crash is finished by the next one; a horizon stored as a bare number (before the record
 * said how far its deletes went) is swept once from the start. dropOrphans leaves no chunk of
 * a cut write, even under a complete snapshot's seq.
 */
import { MemoryStorage } from "../adapters/memory/index.js"
import type { BatchOp, BatchOptions, KVStore, RangeOptions } from "../core/ports/storage.js"
import { encodeCanonical } from "../core/index.js"
import { SnapshotStore } from "../core/store/snapshot-store.js"
import * as K from "../core/store/keys.js"

const DOC = "d"

/** A KVStore that records every range read and every entry deleted. */
class Spy implements KVStore {
  readonly ranges: RangeOptions[] = []
  readonly deleted: number[] = []
  constructor(readonly inner: KVStore) {}
  get(key: Uint8Array) { return this.inner.get(key) }
  range(options: RangeOptions) {
    this.ranges.push(options)
    return this.inner.range(options)
  }
  batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions) {
    const prefix = K.authEntryPrefix(DOC)
    for (const op of ops) if (op.type === "del" && op.key.length === prefix.length + 8 && Buffer.from(op.key).subarray(0, prefix.length).equals(prefix)) this.deleted.push(K.seqFromKey(op.key))
    return this.inner.batch(ops, options)
  }
  close() { return this.inner.close() }
  reset() {
    this.ranges.length = 0
    this.deleted.length = 0
  }
}

const compare = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b))
const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const withEntries = async (n: number) => {
  const spy = new Spy(new MemoryStorage())
  await spy.inner.batch(seqs(1, n).map((s) => ({ type: "put" as const, key: K.authEntry(DOC, s), value: new Uint8Array([s & 0xff]) })))
  return { spy, store: new SnapshotStore(spy, false) }
}

const kept = async (kv: KVStore) => (await kv.range({ gte: K.authEntryPrefix(DOC), lt: K.prefixEnd(K.authEntryPrefix(DOC)) })).map(([k]) => K.seqFromKey(k))

test("a compaction deletes exactly the entries between the previous horizon and its own, reading nothing below", async () => {
  const { spy, store } = await withEntries(5000)
  expect(await store.compact(DOC, 2100)).toBe(2100)
  expect(spy.deleted).toEqual(seqs(1, 2100))
  spy.reset()
  expect(await store.compact(DOC, 4500)).toBe(2400)
  expect(spy.deleted).toEqual(seqs(2101, 4500))
  // Every read starts after the previous horizon: nothing deleted before is walked again.
  expect(spy.ranges.length).toBeGreaterThan(0)
  for (const r of spy.ranges) expect(compare(r.gte!, K.authEntry(DOC, 2101))).toBeGreaterThanOrEqual(0)
  expect(await store.horizon(DOC)).toBe(4500)
  expect(await kept(spy)).toEqual(seqs(4501, 5000))
  // The same horizon again: nothing to read or delete.
  spy.reset()
  expect(await store.compact(DOC, 4500)).toBe(0)
  expect(spy.ranges).toEqual([])
  // A horizon never moves back.
  expect(await store.compact(DOC, 3000)).toBe(0)
  expect(await store.horizon(DOC)).toBe(4500)
})

test("a compaction cut after its horizon write is finished by the next one, from where deletes stopped", async () => {
  const { spy, store } = await withEntries(300)
  await store.compact(DOC, 100)
  // What a crash between the horizon write and the deletes leaves: horizon 200, deletes done to 100.
  await spy.inner.batch([{ type: "put", key: K.authHorizon(DOC), value: encodeCanonical([200, 100]) }])
  expect(await store.horizon(DOC)).toBe(200)
  spy.reset()
  // The load's tidy-up compacts to the stored horizon.
  expect(await store.compact(DOC, 200)).toBe(100)
  expect(spy.deleted).toEqual(seqs(101, 200))
  expect(await kept(spy)).toEqual(seqs(201, 300))
})

test("a horizon stored as a bare number is swept once from the start of the log", async () => {
  const { spy, store } = await withEntries(300)
  // A store written before the record said how far deletes went, cut short: 1..50 deleted.
  await spy.inner.batch([
    ...seqs(1, 50).map((s) => ({ type: "del" as const, key: K.authEntry(DOC, s) })),
    { type: "put", key: K.authHorizon(DOC), value: encodeCanonical(120) },
  ])
  expect(await store.horizon(DOC)).toBe(120)
  expect(await store.compact(DOC, 120)).toBe(70)
  expect(await kept(spy)).toEqual(seqs(121, 300))
  spy.reset()
  expect(await store.compact(DOC, 120)).toBe(0)
  expect(spy.ranges).toEqual([])
})

test("compactions of one document asked for at once run one after the other, and the horizon ends at the highest", async () => {
  const { spy, store } = await withEntries(3000)
  const counts = await Promise.all([store.compact(DOC, 2500), store.compact(DOC, 1000), store.compact(DOC, 2800)])
  expect(counts).toEqual([2500, 0, 300])
  expect(await store.horizon(DOC)).toBe(2800)
  expect(await kept(spy)).toEqual(seqs(2801, 3000))
})

test("dropOrphans deletes a cut write's chunks: those of a seq with no meta, and those past a complete snapshot's own at the same seq", async () => {
  const kv = new MemoryStorage()
  const store = new SnapshotStore(kv, false)
  const chunkCount = async (seq: number) => (await kv.range({ gte: K.authChunksOf(DOC, seq), lt: K.prefixEnd(K.authChunksOf(DOC, seq)) })).length
  const fill = (n: number, byte: number) => Array.from({ length: n }, () => new Uint8Array(1024).fill(byte))
  // Seq 10: a write in six 1 KiB chunks cut before its meta, then a whole one in two 4 KiB chunks.
  await store.putChunks(DOC, 10, 0, fill(6, 0xee))
  await store.putChunks(DOC, 10, 0, [new Uint8Array(4096).fill(1), new Uint8Array(100).fill(2)])
  await store.putMeta(DOC, { seq: 10, hash: "h10", size: 4196, chunks: 2, lastTime: 0 })
  // Seq 20: only a cut write. Seq 30: complete, nothing past it.
  await store.putChunks(DOC, 20, 0, fill(3, 0xee))
  await store.putChunks(DOC, 30, 0, fill(2, 3))
  await store.putMeta(DOC, { seq: 30, hash: "h30", size: 2048, chunks: 2, lastTime: 0 })
  expect(await store.dropOrphans(DOC)).toBe(2)
  expect([await chunkCount(10), await chunkCount(20), await chunkCount(30)]).toEqual([2, 0, 2])
  expect((await store.chunk(DOC, 10, 1)).length).toBe(100)
  expect(await store.dropOrphans(DOC)).toBe(0)
})
