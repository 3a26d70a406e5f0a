/**
 * A snapshot taken right after a document loads must keep its chunks.
 *
 * Found by the snapshot crash scenario (test/crash-snapshot.test.ts): after a restart,
 * clients resend their outboxes, the log outgrows the policy within milliseconds, and a
 * snapshot begins while the load's background tidy-up (DocAuthority.tidy) is still sweeping
 * "orphan" chunks, i.e. chunks without a meta. A snapshot being written has no meta yet, so
 * its chunks were swept; its meta was written after them, the log was compacted behind it,
 * and the next load failed: "compacted up to seq N but no stored snapshot of it verifies".
 *
 * Here the same interleaving is made certain: a store whose range reads over snapshot chunks
 * are slow (a busy disk), and a snapshot requested as soon as the document has loaded.
 */
import { AuthorityStore, Hub, type Connection, type KVStore, type ServerMessage } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import * as K from "../core/store/keys.js"
import { Todo } from "./support/machines.js"

const DOC = "d"
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const silent = { send: () => {}, close: () => {} } as unknown as Connection<ServerMessage>

test("a snapshot taken right after a load keeps its chunks, and the document loads again after the compaction behind it", async () => {
  const mem = new MemoryStorage()
  const first = new Hub({ machines: [Todo], storage: mem, runtime: systemRuntime })
  const writer = await first.doc(DOC, Todo)
  for (let i = 1; i <= 20; i++) {
    writer.submit(silent, "c", { type: "submit", docId: DOC, commands: [{ clientSeq: i, name: "add", args: { id: `i${i}`, title: "t" } }], ackedClientSeq: 0 })
  }
  for (let t = 0; writer.headSeq < 20 && t < 200; t++) await sleep(10)
  expect(writer.headSeq).toBe(20)
  const hash = writer.stateHash()
  await first.close()

  const chunkKind = K.authChunkPrefix(DOC)[1]
  const slowDisk: KVStore = {
    get: (k) => mem.get(k),
    batch: (ops, o) => mem.batch(ops, o),
    close: () => mem.close(),
    range: async (o) => {
      if (o.gte !== undefined && o.gte[1] === chunkKind) await sleep(30)
      return mem.range(o)
    },
  }
  const second = new Hub({ machines: [Todo], storage: slowDisk, runtime: systemRuntime, snapshots: { tailBytes: 0 } })
  const doc = await second.doc(DOC, Todo)
  const meta = await doc.snapshotNow()
  for (let t = 0; doc.compactedThrough === 0 && t < 100; t++) await sleep(10)
  await sleep(200)
  await second.close()

  expect(meta.seq).toBe(20)
  expect(await mem.get(K.authChunk(DOC, meta.seq, 0))).toBeDefined()
  expect(await new AuthorityStore(mem).snapshots.horizon(DOC)).toBe(19)
  const third = new Hub({ machines: [Todo], storage: mem, runtime: systemRuntime })
  const reloaded = await third.doc(DOC, Todo)
  expect(reloaded.headSeq).toBe(20)
  expect(reloaded.stateHash()).toBe(hash)
  await third.close()
})
