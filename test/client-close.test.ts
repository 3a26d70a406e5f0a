/**
 * Closing waits for what was submitted: `doc.close()` and `client.close()` resolve only once
 * the commands submitted before them are in the stored outbox ("pending commands stay in the
 * outbox for next time"), even when the close comes in the same tick as the submit, before
 * the outbox write that a submit schedules for a microtask.
 * Opening a document whose id the wire cannot carry is refused at once.
 */
import { CanonClient, type ClientTransport, type KVStore, replicaStorage } from "../core/index.js"
import { ReplicaStore } from "../core/internal.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { offlineTransport } from "./support/offline.js"


/** A disk whose writes take real milliseconds, so an unawaited write is still in flight. */
const slowDisk = (): { storage: KVStore; inner: MemoryStorage } => {
  const inner = new MemoryStorage()
  const storage: KVStore = {
    get: (k) => inner.get(k),
    range: (o) => inner.range(o),
    close: () => inner.close(),
    batch: async (ops, o) => {
      await new Promise((r) => setTimeout(r, 20))
      await inner.batch(ops, o)
    },
  }
  return { storage, inner }
}

test.each([
  ["doc.close()", (_c: CanonClient, d: { close(): Promise<void> }) => d.close()],
  ["client.close()", (c: CanonClient) => c.close()],
])("submit, then at once %s: the command is stored when it resolves", async (_what, close) => {
  const { storage, inner } = slowDisk()
  const client = await CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(1), storage: replicaStorage(storage), autoConnect: false })
  const doc = await client.open(Todo, "list")
  const receipt = doc.submit("add", { id: "a", title: "A" })
  await close(client, doc)
  expect((await new ReplicaStore(inner).load("list"))?.outbox.map((o) => o.name)).toEqual(["add"])
  await receipt.persisted
  await client.close()
})

test("a document id the wire cannot carry is refused by open, before any subscribe", async () => {
  const sent: unknown[] = []
  const transport: ClientTransport = { connect: () => ({ send: (m) => void sent.push(m), close() {}, bufferedAmount: 0 }) }
  const client = await CanonClient.open({ transport, runtime: new VirtualRuntime(1), autoConnect: false })
  for (const docId of ["", "é".repeat(257), "board/😀😀\ud83d"]) {
    await expect(client.open(Todo, docId)).rejects.toMatchObject({ code: "invalid-doc-id" })
  }
  expect((await client.open(Todo, "é".repeat(256))).docId).toHaveLength(256)
  expect(sent).toEqual([])
  await client.close()
})
