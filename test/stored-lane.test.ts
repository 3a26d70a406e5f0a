/**
 * The store's lane (core/store/stored-lane.ts) retries a failed write after a second. A
 * document closed meanwhile leaves no such timer armed (DESIGN invariant 10, closed means
 * quiet): its close already carries what the failed write held into the write it waits for.
 */
import { CanonClient } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { offlineTransport } from "./support/offline.js"

const flush = () => new Promise((resolve) => setTimeout(resolve, 0))

test("a write that failed before close leaves no retry timer armed after it", async () => {
  const rt = new VirtualRuntime(1)
  let failing = false
  const storage = new MemoryStorage({ failWrite: () => failing })
  const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, storage, autoConnect: false })
  const doc = await client.open(Todo, "d")
  const errors: string[] = []
  doc.on("error", (e) => errors.push(e.code))
  failing = true
  doc.submit("add", { id: "a", title: "A" })
  await flush()
  await doc.whenStored()
  expect(errors).toEqual(["storage-failed"])
  // The outbox write failed: a retry is armed while the document is open.
  expect(rt.armed).toBe(1)
  failing = false
  await client.close()
  expect(rt.armed).toBe(0)
  // What the failed write held was written by close: the command is in the outbox.
  const again = await CanonClient.open({ transport: offlineTransport, runtime: rt, storage, autoConnect: false })
  expect((await again.open(Todo, "d")).pending.map((p) => p.name)).toEqual(["add"])
  await again.close()
})
