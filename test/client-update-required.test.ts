/**
 * A hub's `update-required` lasts its connection. It made the document read-only until the
 * app opened it again, so one forged frame (a hostile hub, a man in the middle on plain
 * ws://) refused every later edit, also after reconnecting to an honest hub that was online
 * and synced (found by a helper attacking the client). An honest hub tells it again on every
 * connection whose follower reaches the entry (core/authority/followers.ts); the app hears
 * the event once.
 */
import { CanonClient, type ClientMessage, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

test("update-required read-only lasts the connection that told it", async () => {
  let listener: ConnectionListener<ServerMessage> | undefined
  const transport = {
    connect(l: ConnectionListener<ServerMessage>) {
      listener = l
      queueMicrotask(() => l.onOpen?.())
      return { send: (_: ClientMessage) => {}, close: () => {}, bufferedAmount: 0 }
    },
  }
  const client = await CanonClient.open({ transport, runtime: new VirtualRuntime(1), storage: new MemoryStorage(), clientId: "c1", machines: [Todo], backoff: { baseMs: 1, maxMs: 1 } })
  await flush()
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  const doc = await client.open(Todo, "list")
  const told: number[] = []
  doc.on("updateRequired", (e) => told.push(e.seq))
  listener!.onMessage({ type: "error", docId: "list", code: "update-required", seq: 1, message: "Update the app." })
  const refused = doc.submit("add", { id: "a", title: "A" })
  await expect(refused).rejects.toMatchObject({ code: "update-required" })
  // Never stored: `persisted` says so, with the same error (it said undefined, "stored", before).
  expect(await refused.persisted).toMatchObject({ code: "update-required", clientSeq: -1 })
  expect(doc.updateRequired?.seq).toBe(1)

  // The next connection: the hub does not say it again, so the document takes edits.
  client.disconnect()
  client.connect()
  await flush()
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  await flush()
  expect(doc.updateRequired).toBeUndefined()
  const invalid = doc.submit("add", { id: 1 } as never)
  await expect(invalid).rejects.toMatchObject({ code: "invalid-args" })
  expect(await invalid.persisted).toMatchObject({ code: "invalid-args" })
  const r = doc.submit("add", { id: "b", title: "B" })
  r.catch(() => {})
  await r.persisted
  expect(doc.pendingCount).toBe(1)
  // Told again, it is read-only again; the app heard it once.
  listener!.onMessage({ type: "error", docId: "list", code: "update-required", seq: 1, message: "Update the app." })
  expect(doc.updateRequired?.seq).toBe(1)
  expect(told).toEqual([1])
  await client.close()
})
