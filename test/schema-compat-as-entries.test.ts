/**
 * Compat mode (an app newer than its hub) compares each own entry that comes whole with the
 * form the hub logged its pending command in (core/schema/compat.ts `logged`), so that a
 * restored store's new command is not confirmed by its old life's entry
 * (schema-compat-restored-backup). A `$as` outbox record, written by an earlier app version
 * (core/schema/replica-upgrade.ts), was compared with what this app would send of it: a
 * `$as` of a version older than the hub's goes as `$as` but the hub logs its upcast, and one
 * newer than the hub's cannot go at all. Its own entry was taken for another command's: the
 * toggle stayed pending and was applied twice in the app's view, until the hub's upgrade for
 * the second (found by a review). A `$as` is now compared in the form the hub logged it in.
 */
import { CanonClient, Hub, replicaStorage, type Doc } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { historyOf } from "../core/schema/versions.js"
import { TodoV1, TodoV2, TodoV3 } from "./support/versioned-machines.js"

const doneOf = (d: Doc<any>): unknown => (d.state as { items: Record<string, { done: boolean }> }).items.a?.done

test("a command sent at v2 to a v1 hub, its entry not seen before the app's upgrade to v3, is confirmed by that entry", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 20 })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [TodoV1], storage, runtime: rt })
  net.listen(hub)
  const disk = new MemoryStorage()
  const c1 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: replicaStorage(disk) })
  const d1 = await c1.open(TodoV2, "t")
  d1.submit("add", { id: "a", title: "A", priority: 0 })
  await rt.run({ forMs: 1_000 })
  const h = await hub.doc("t", TodoV1)
  d1.submit("toggle", { id: "a" })
  await d1.whenStored()
  // The hub logs the toggle; the app goes before its entry arrives, and is upgraded to v3:
  // the toggle is now a `$as` of v2, which cannot go to a v1 hub.
  for (let i = 0; i < 400 && h.headSeq < 2; i++) await rt.run({ forMs: 1 })
  expect(h.headSeq).toBe(2)
  net.partition("c")
  await rt.run({ forMs: 100 })
  expect(d1.pendingCount).toBe(1)
  await c1.close()
  net.heal("c")
  const c2 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: replicaStorage(disk) })
  const d2 = await c2.open(TodoV3, "t")
  const told: string[] = []
  d2.on("confirmed", (e) => told.push(`confirmed ${e.clientSeq} ${e.command} at ${e.seq}`))
  await rt.run({ forMs: 5_000 })
  expect([d2.confirmedSeq, d2.pendingCount, doneOf(d2)]).toEqual([2, 0, true])
  expect(told).toEqual(["confirmed 2 toggle at 2"])
})

test("a `$as` of a version older than the hub's, its entry coming in a catch-up, is confirmed by it and never shown applied twice", async () => {
  const V1 = historyOf(TodoV3)!.at(1)
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 20 })
  const hub = new Hub({ machines: [TodoV2], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const disk = new MemoryStorage()
  const c1 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: replicaStorage(disk) })
  const d1 = await c1.open(V1, "t")
  d1.submit("add", { id: "a", title: "A" })
  await rt.run({ forMs: 500 })
  net.partition("c")
  d1.submit("toggle", { id: "a" })
  await d1.whenStored()
  await c1.close()
  net.heal("c")
  // Upgraded to v3 with the toggle unsent: a `$as` of v1, which the v2 hub upcasts.
  const c2 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: replicaStorage(disk) })
  const d2 = await c2.open(TodoV3, "t")
  const seen: unknown[] = []
  d2.on("change", () => seen.push(doneOf(d2)))
  const told: string[] = []
  d2.on("confirmed", (e) => told.push(`confirmed ${e.clientSeq} at ${e.seq}`))
  const h = await hub.doc("t", TodoV2)
  // The hub logs the toggle; the connection drops before its entry arrives.
  for (let i = 0; i < 400 && h.headSeq < 2; i++) await rt.run({ forMs: 1 })
  net.partition("c")
  await rt.run({ forMs: 100 })
  net.heal("c")
  await rt.run({ forMs: 3_000 })
  expect([h.headSeq, d2.pendingCount, doneOf(d2)]).toEqual([2, 0, true])
  expect(told).toEqual(["confirmed 2 at 2"])
  // Toggled once: never shown undone by a second toggle on top of its entry.
  expect(seen.filter((done) => done !== true)).toEqual([])
})
