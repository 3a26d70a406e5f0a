/**
 * A replica holds at most MAX_PRESENCE_HELD_BYTES of other clients' presence per document
 * (core/limits.ts). It held every clientId a hub named, each state up to a frame, for as long
 * as the connection lasted: a hostile hub (or anyone on a ws:// path) could grow a tab's
 * memory without bound. Past the bound a newcomer is shown as gone; a client that leaves frees
 * its bytes; presence is still relayed as before under it.
 */
import { CanonClient, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { encodeCanonical } from "../core/canonical.js"
import { MAX_PRESENCE_HELD_BYTES } from "../core/limits.js"
import { Todo } from "./support/machines.js"

const DOC = "list"
const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

const openDoc = async () => {
  let listener: ConnectionListener<ServerMessage> | undefined
  const transport = { connect(l: ConnectionListener<ServerMessage>) { listener = l; queueMicrotask(() => l.onOpen?.()); return { send: () => {}, close: () => {}, bufferedAmount: 0 } } }
  const client = await CanonClient.open({ transport, runtime: new VirtualRuntime(1), storage: new MemoryStorage(), clientId: "c1", machines: [Todo] })
  await flush()
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  const doc = await client.open(Todo, DOC)
  await flush()
  const events: Array<{ clientId: string; state: unknown }> = []
  doc.on("presence", (e) => events.push(e))
  const presence = (clientId: string, state: unknown) => listener!.onMessage({ type: "presence", docId: DOC, clientId, state })
  return { client, doc, events, presence }
}

// 64 KiB of string: a state as large as a frame allows is what an attacker sends.
const big = "x".repeat(64 << 10)
const perClient = (id: string) => id.length + encodeCanonical({ big }).length
const fits = (id: string) => Math.floor(MAX_PRESENCE_HELD_BYTES / perClient(id))

test("a hub naming ever more clients cannot grow what a document holds past the bound", async () => {
  const { client, doc, events, presence } = await openDoc()
  const n = fits("p0000") + 50
  for (let i = 0; i < n; i++) presence(`p${String(i).padStart(4, "0")}`, { big })
  expect(doc.presence.size).toBe(fits("p0000"))
  let held = 0
  for (const [id, state] of doc.presence) held += id.length + encodeCanonical(state).length
  expect(held).toBeLessThanOrEqual(MAX_PRESENCE_HELD_BYTES)
  // The ones past the bound were told as gone, not shown.
  expect(events.slice(-50).every((e) => e.state === null)).toBe(true)
  await client.close()
})

test("a client that leaves, or shrinks its state, frees room for another", async () => {
  const { client, doc, presence } = await openDoc()
  const k = fits("p0000")
  for (let i = 0; i < k; i++) presence(`p${String(i).padStart(4, "0")}`, { big })
  presence("late", { big })
  expect(doc.presence.has("late")).toBe(false)
  presence("p0000", null)
  presence("p0001", { cursor: 1 })
  presence("late", { big })
  expect(doc.presence.has("late")).toBe(true)
  expect(doc.presence.get("p0001")).toEqual({ cursor: 1 })
  // Replacing a held client's state does not count it twice.
  for (let i = 0; i < 100; i++) presence("p0002", { big })
  expect(doc.presence.has("p0002")).toBe(true)
  await client.close()
})

test("small presence is relayed as before (control)", async () => {
  const { client, doc, events, presence } = await openDoc()
  presence("a", { x: 1 })
  presence("b", { x: 2 })
  presence("a", null)
  expect([...doc.presence]).toEqual([["b", { x: 2 }]])
  expect(events).toEqual([{ clientId: "a", state: { x: 1 } }, { clientId: "b", state: { x: 2 } }, { clientId: "a", state: null }])
  await client.close()
})
