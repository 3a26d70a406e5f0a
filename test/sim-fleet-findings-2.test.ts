/**
 * More engine bugs the simulator's mixed fleet (test/sim/versioned.ts) found, each reduced to
 * a deterministic test.
 *
 * 1. Seed 438: the app was told a command was confirmed as soon as its entry arrived, before
 *    the write removing it from the outbox was stored. A crash in between brought it back in
 *    the outbox. Usually harmless (sent again, the hub answers "duplicate" and it is
 *    confirmed again at the same seq), but an app that restarts into `update-required` (the
 *    seed: its version cannot be served from its confirmed seq on) keeps its outbox
 *    read-only and never hears of it again: a command the app was told about stays in the
 *    outbox for good. Fix: the app is told once the removal is stored.
 * 2. Seed 380: an outbox write that failed (a disk fault) was retried a second later, but the
 *    write of the commands submitted after it, already queued, stored and sent them: the
 *    hub refused the gap (sequence-gap), and after a crash before the retry the stored
 *    outbox had a hole for good. Fix: the next outbox write carries the failed commands first.
 * 3. Seed 194 (with fix 1 alone): a confirmation write that failed waited for the next
 *    write to carry it; with no further entry, the app never heard of the confirmation.
 *    Fix: a failed confirmation write is retried a second later.
 */
import { CanonClient, Hub, replicaStorage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { TodoV1, TodoV2 } from "./support/versioned-machines.js"
import { SimProcess } from "./sim/process.js"
import { running, settle } from "./support/virtual-time.js"

const DOC = "list"

test("a command the app was told is confirmed is not back in the outbox after a crash", async () => {
  const rt = new VirtualRuntime(23)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [TodoV2], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  let diskMs = 0
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: () => diskMs } })
  const start = async (autoConnect = true) => {
    const proc = new SimProcess("a", rt, disk)
    const client = await CanonClient.open({ transport: proc.wrapTransport(net.transport("a")), runtime: proc.runtime, clientId: "a", storage: replicaStorage(proc.storage), backoff: { baseMs: 50, maxMs: 200 }, autoConnect })
    return { proc, client, doc: await client.open(TodoV1, DOC) }
  }
  const b = await CanonClient.open({ transport: net.transport("b"), runtime: rt, clientId: "b", storage: new MemoryStorage() })
  const docB = await b.open(TodoV2, DOC)
  docB.submit("add", { id: "x", title: "X", priority: 0 })
  const first = await running(rt, start())
  await settle(rt)
  expect(first.doc.state.items.x).toEqual({ title: "X", done: false })

  // The command is stored in the outbox and sent; then the disk slows down, and the process
  // dies while the write removing it from the outbox is in flight.
  const told: number[] = []
  first.doc.on("confirmed", (e) => told.push(e.clientSeq))
  net.partition("a")
  first.doc.submit("toggle", { id: "x" })
  await settle(rt, 500)
  diskMs = 60_000
  net.heal("a")
  await settle(rt)
  expect((await hub.doc(DOC, TodoV2)).state.items.x?.done).toBe(true)
  first.proc.kill()
  net.drop("a")
  diskMs = 0

  // The restarted app, before it connects: what the outbox holds was never confirmed to it.
  const second = await running(rt, start(false))
  const kept = second.doc.pending.map((p) => p.clientSeq)
  expect(told.filter((cs) => kept.includes(cs))).toEqual([])
  expect(told.length + kept.length).toBe(1)
  // Sent again, it is recognised (applied once) and confirmed.
  const toldAfter: number[] = []
  second.doc.on("confirmed", (e) => toldAfter.push(e.clientSeq))
  second.client.connect()
  await settle(rt)
  expect(second.doc.pendingCount).toBe(0)
  expect([...told, ...toldAfter]).toEqual([1])
  expect(second.doc.state.items.x).toEqual({ title: "X", done: true })
  await running(rt, second.client.close())
  await b.close()
  await hub.close()
})

test("an outbox write that fails is carried by the next one: no gap in the outbox, on the wire or after a crash", async () => {
  const rt = new VirtualRuntime(24)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [TodoV2], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  let failNext = 0
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: () => 20 }, failWrite: () => failNext-- > 0 })
  const start = async () => {
    const proc = new SimProcess("a", rt, disk)
    const client = await CanonClient.open({ transport: proc.wrapTransport(net.transport("a")), runtime: proc.runtime, clientId: "a", storage: replicaStorage(proc.storage), backoff: { baseMs: 50, maxMs: 200 } })
    return { proc, client, doc: await client.open(TodoV2, DOC) }
  }
  const first = await running(rt, start())
  await settle(rt)
  const errors: string[] = []
  first.doc.on("error", (e) => errors.push(e.code))

  // The first write fails; the commands submitted while it is in flight are written after it.
  failNext = 1
  first.doc.submit("add", { id: "x", title: "X", priority: 0 })
  await rt.run({ forMs: 5 })
  first.doc.submit("add", { id: "y", title: "Y", priority: 0 })
  first.doc.submit("add", { id: "z", title: "Z", priority: 0 })
  // The process dies before the failed write is retried (a second later).
  await rt.run({ forMs: 200 })
  first.proc.kill()
  net.drop("a")
  expect(errors).toContain("storage-failed")
  expect(errors).not.toContain("sequence-gap")

  const second = await running(rt, start())
  const errorsAfter: string[] = []
  second.doc.on("error", (e) => errorsAfter.push(e.code))
  await settle(rt)
  expect(errorsAfter).toEqual([])
  expect(second.doc.pendingCount).toBe(0)
  expect(Object.keys((await hub.doc(DOC, TodoV2)).state.items).sort()).toEqual(["x", "y", "z"])
  await running(rt, second.client.close())
  await hub.close()
})

test("a confirmation whose write failed is told once a retry stores it, with no later entry to carry it", async () => {
  const rt = new VirtualRuntime(25)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [TodoV2], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  let failNext = 0
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: () => 5 }, failWrite: () => failNext-- > 0 })
  const a = await running(rt, CanonClient.open({ transport: net.transport("a"), runtime: rt, clientId: "a", storage: disk }))
  const doc = await running(rt, a.open(TodoV2, DOC))
  await settle(rt)
  const told: number[] = []
  doc.on("confirmed", (e) => told.push(e.clientSeq))
  doc.submit("add", { id: "x", title: "X", priority: 0 })
  // The outbox write succeeds (it is sent); the write removing it after its entry fails.
  await rt.run({ forMs: 8 })
  failNext = 1
  await settle(rt, 200)
  expect(failNext).toBe(0)
  expect(told).toEqual([])
  await settle(rt, 2000)
  expect(told).toEqual([1])
  expect(doc.pendingCount).toBe(0)
  await running(rt, a.close())
  await hub.close()
})
