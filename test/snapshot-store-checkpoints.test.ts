/**
 * Compaction deletes a document's checkpoints below its horizon with the entries
 * (core/store/snapshot-store.ts): a checkpoint is the state hash after an entry, and once the
 * entries up to it are gone nothing replays to it (a replay starts at a snapshot at or past
 * the horizon; the head's own checkpoint lives in the head record). Before, checkpoints were
 * never deleted: a document kept one per `checkpointEvery` entries (and one per quiet spell)
 * of its whole history (attack review r15, "not measured"). A store written before keeps every
 * checkpoint below its horizon: a load's tidy-up sweeps them once. On a real LevelDB.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient, Hub, encodeCanonical, type KVStore } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { SnapshotStore } from "../core/store/snapshot-store.js"
import * as K from "../core/store/keys.js"
import { LevelStorage } from "../adapters/level/index.js"
import { MemoryNetwork } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { Todo } from "./support/machines.js"

const DOC = "d"
const dirs: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "canon-checkpoints-"))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const seqsOf = async (kv: KVStore, prefix: Uint8Array) => (await kv.range({ gte: prefix, lt: K.prefixEnd(prefix) })).map(([k]) => K.seqFromKey(k))
const checkpointSeqs = (kv: KVStore, docId = DOC) => seqsOf(kv, K.authCheckpointPrefix(docId))
const entrySeqs = (kv: KVStore, docId = DOC) => seqsOf(kv, K.authEntryPrefix(docId))
const putCheckpoints = (kv: KVStore, seqs: number[]) => kv.batch(seqs.map((s) => ({ type: "put" as const, key: K.authCheckpoint(DOC, s), value: encodeCanonical(`hash-${s}`) })))
const range = (from: number, to: number, step = 1) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step)

test("a compaction deletes the checkpoints below its horizon and keeps those at or past it", async () => {
  const kv = await LevelStorage.open(tempDir())
  try {
    await kv.batch(range(1, 3000).map((s) => ({ type: "put" as const, key: K.authEntry(DOC, s), value: new Uint8Array([s & 0xff]) })))
    await putCheckpoints(kv, range(10, 3000, 10))
    const store = new SnapshotStore(kv, false)
    expect(await store.compact(DOC, 1000)).toBe(1000)
    expect(await entrySeqs(kv)).toEqual(range(1001, 3000))
    expect(await checkpointSeqs(kv)).toEqual(range(1000, 3000, 10))
    // The next one goes on from where this one stopped.
    await store.compact(DOC, 2500)
    expect(await checkpointSeqs(kv)).toEqual(range(2500, 3000, 10))
    // Another document's checkpoints are not touched.
    await kv.batch([{ type: "put", key: K.authCheckpoint("e", 5), value: encodeCanonical("x") }])
    await store.compact(DOC, 2600)
    expect(await checkpointSeqs(kv, "e")).toEqual([5])
  } finally {
    await kv.close()
  }
})

test("checkpoints a store kept below its horizon from before are swept by a sweeping compaction (a load's tidy-up, the CLI), not by the next one", async () => {
  const kv = await LevelStorage.open(tempDir())
  try {
    await kv.batch(range(1, 3000).map((s) => ({ type: "put" as const, key: K.authEntry(DOC, s), value: new Uint8Array([1]) })))
    const store = new SnapshotStore(kv, false)
    await store.compact(DOC, 2000)
    // As written before compaction deleted checkpoints: every one of its history.
    await putCheckpoints(kv, range(16, 3000, 16))
    await store.compact(DOC, 2000)
    expect((await checkpointSeqs(kv))[0]).toBe(16)
    await store.compact(DOC, 2000, undefined, undefined, true)
    expect(await checkpointSeqs(kv)).toEqual(range(2000, 3000).filter((s) => s % 16 === 0))
    expect(await entrySeqs(kv)).toEqual(range(2001, 3000))
  } finally {
    await kv.close()
  }
})

test("a hub on LevelDB keeps the checkpoints of the log it keeps, and sweeps old ones when it loads the document", async () => {
  const location = tempDir()
  const net = new MemoryNetwork(systemRuntime, { latency: () => 0 })
  const open = async () => {
    const kv = await LevelStorage.open(location)
    const hub = new Hub({
      machines: [Todo], storage: kv, runtime: systemRuntime, sync: false, checkpointEvery: 4, quietCheckpointMs: 50,
      snapshots: { minLogBytes: 4 << 10, logRatio: 1, tailBytes: 1 << 10, chunkBytes: 4 << 10 },
    })
    net.listen(hub)
    return { kv, hub }
  }
  let { kv, hub } = await open()
  const client = await CanonClient.open({ transport: net.transport("writer"), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 20, maxMs: 100 } })
  try {
    const doc = await client.open(Todo, DOC)
    for (let round = 0; round < 8; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => doc.submit("note", { text: `${round}-${i}-`.padEnd(100, "n") })))
    }
    const store = new AuthorityStore(kv)
    // Compaction runs behind a snapshot, in the background.
    for (let t = 0; t < 200 && (await store.snapshots.horizon(DOC)) < 300; t++) await new Promise((r) => setTimeout(r, 25))
    const horizon = await store.snapshots.horizon(DOC)
    expect(horizon).toBeGreaterThanOrEqual(300)
    const head = (await hub.doc(DOC, Todo)).headSeq
    expect(head).toBe(400)
    for (let t = 0; t < 200 && (await checkpointSeqs(kv)).some((s) => s < horizon); t++) await new Promise((r) => setTimeout(r, 25))
    const kept = await checkpointSeqs(kv)
    expect(kept.length).toBeGreaterThan(0)
    expect(kept.every((s) => s >= horizon)).toBe(true)
    // One every 4 entries of what is left of the log, plus a quiet one or two: not 100.
    expect(kept.length).toBeLessThanOrEqual((head - horizon) / 4 + 3)
    await client.close()
    await hub.close()
    // A store from before: checkpoints below the horizon, never deleted.
    await putCheckpoints(kv, range(4, horizon - 1, 4))
    await kv.close()
    ;({ kv, hub } = await open())
    await hub.doc(DOC, Todo)
    for (let t = 0; t < 200 && (await checkpointSeqs(kv)).some((s) => s < horizon); t++) await new Promise((r) => setTimeout(r, 25))
    expect((await checkpointSeqs(kv)).filter((s) => s < horizon)).toEqual([])
  } finally {
    await client.close()
    await hub.close()
    await kv.close()
  }
})
