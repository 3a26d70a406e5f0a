/**
 * What a document's close tells of commands not stored yet (core/replica/doc.ts close). Before:
 * every receipt was rejected with `closed`, "the command stays in the outbox", also for a
 * command the failing storage never stored, which the next open does not have: a loss the
 * app was told was not one.
 */
import { CanonClient, CanonError } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { offlineTransport } from "./support/offline.js"

const told = (receipt: Promise<unknown>) => receipt.then(() => "confirmed", (e: unknown) => (e instanceof CanonError ? e.code : String(e)))

const reopenPending = async (rt: VirtualRuntime, storage: MemoryStorage) => {
  const again = await CanonClient.open({ transport: offlineTransport, runtime: rt, storage, autoConnect: false })
  const pending = (await again.open(Todo, "d")).pending.map((p) => p.name)
  await again.close()
  return pending
}

test("a command the failing storage never stored is told storage-failed at close (and the next open has none); a stored one is told closed and is there", async () => {
  const rt = new VirtualRuntime(1)
  let failing = false
  const storage = new MemoryStorage({ failWrite: () => failing })
  const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, storage, autoConnect: false })
  const doc = await client.open(Todo, "d")
  const kept = doc.submit("add", { id: "a", title: "A" })
  await kept.persisted
  failing = true
  const lost = doc.submit("add", { id: "b", title: "B" })
  await client.close()
  const answers = [await told(kept), await told(lost)]
  expect(answers).toEqual(["closed", "storage-failed"])
  // Its `persisted` settles too, with the same error (it never rejects: an app's `.then` on it
  // must not become an unhandled rejection): an app awaiting it before unload does not wait forever.
  expect((await lost.persisted)?.code).toBe("storage-failed")
  expect(await kept.persisted).toBeUndefined()
  expect(await lost.catch((e: Error) => e.message)).toMatch(/closed before "add" was stored \(the storage failed\): it is lost/)
  failing = false
  expect(await reopenPending(rt, storage)).toEqual(["add"])
})

test("commands submitted in the tick of the close are stored by it and told closed; without a storage, closed too", async () => {
  const rt = new VirtualRuntime(2)
  const storage = new MemoryStorage()
  const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, storage, autoConnect: false })
  const doc = await client.open(Todo, "d")
  const receipts = [doc.submit("add", { id: "a", title: "A" }), doc.submit("add", { id: "b", title: "B" })]
  await doc.close()
  expect(await Promise.all(receipts.map(told))).toEqual(["closed", "closed"])
  await client.close()
  expect(await reopenPending(rt, storage)).toEqual(["add", "add"])

  const memoryOnly = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false })
  const d2 = await memoryOnly.open(Todo, "d")
  const r = d2.submit("add", { id: "c", title: "C" })
  await memoryOnly.close()
  expect(await told(r)).toBe("closed")
})
