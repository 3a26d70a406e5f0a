/**
 * A read that fails while a document loads says nothing about what is stored. The load took
 * any error reading a snapshot as "this snapshot does not verify": it skipped to an older
 * one, or to none, and with the log compacted behind the snapshot it called the document
 * corrupt ("compacted up to seq N but no stored snapshot of it verifies"), a verdict an
 * operator acts on, for a disk that did not answer once (found by the simulator's hub read
 * failures). A failed read now fails the load as it is, `storage-failed`, and the next load
 * (the replica asks again, core/replica/doc.ts LOAD_FAILURES) reads the snapshot.
 */
import { Hub, type Connection, type HubEvent, type KVStore, type ServerMessage } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import * as K from "../core/store/keys.js"
import { canonError } from "../core/errors.js"
import { Todo } from "./support/machines.js"

const DOC = "d"
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const silent = { send: () => {}, close: () => {} } as unknown as Connection<ServerMessage>
const startsWith = (key: Uint8Array, prefix: Uint8Array): boolean => key.length >= prefix.length && prefix.every((b, i) => key[i] === b)

test("a snapshot read that fails at load fails the load as storage-failed, and the next load reads the snapshot", async () => {
  const mem = new MemoryStorage()
  const first = new Hub({ machines: [Todo], storage: mem, runtime: systemRuntime, snapshots: { tailBytes: 0 } })
  const writer = await first.doc(DOC, Todo)
  for (let i = 1; i <= 20; i++) {
    writer.submit(silent, "c", { type: "submit", docId: DOC, commands: [{ clientSeq: i, name: "add", args: { id: `i${i}`, title: "t" } }], ackedClientSeq: 0 })
  }
  for (let t = 0; writer.headSeq < 20 && t < 200; t++) await sleep(10)
  expect(writer.headSeq).toBe(20)
  const hash = writer.stateHash()
  await writer.snapshotNow()
  for (let t = 0; writer.compactedThrough === 0 && t < 100; t++) await sleep(10)
  await first.close()
  expect(await new AuthorityStore(mem).snapshots.horizon(DOC)).toBeGreaterThan(0)

  // The disk fails the next read of a snapshot chunk, once.
  const chunks = K.authChunkPrefix(DOC)
  let failures = 1
  const fail = () => Promise.reject(canonError("storage-failed", "The disk did not answer."))
  const flaky: KVStore = {
    get: (k) => (startsWith(k, chunks) && failures > 0 ? (failures--, fail()) : mem.get(k)),
    range: (o) => (o.gte !== undefined && startsWith(o.gte, chunks) && failures > 0 ? (failures--, fail()) : mem.range(o)),
    batch: (ops, o) => mem.batch(ops, o),
    close: () => mem.close(),
  }
  const events: HubEvent[] = []
  const second = new Hub({ machines: [Todo], storage: flaky, runtime: systemRuntime, onEvent: (e) => events.push(e) })
  const error = await second.doc(DOC, Todo).then(() => undefined, (e: { code: string; message: string }) => e)
  expect(failures).toBe(0)
  expect(error).toMatchObject({ code: "storage-failed", message: "The disk did not answer." })
  // Nothing stored was judged: no snapshot skipped as invalid, no document called corrupt.
  expect(events.map((e) => JSON.stringify(e)).filter((e) => /snapshot-invalid|storage-corrupt/.test(e))).toEqual([])
  const reloaded = await second.doc(DOC, Todo)
  expect(reloaded.headSeq).toBe(20)
  expect(reloaded.stateHash()).toBe(hash)
  await second.close()
})
