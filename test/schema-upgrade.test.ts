/**
 * Upgrades over time: the hub's upgrade recorded in the log (replay across it, the same hash
 * on every replica at the new version, a snapshot that lets new replicas skip the old
 * history), and a client's upgrade (an old outbox, already applied by the hub but never
 * acknowledged, opened by new code: sent in its original form and applied exactly once).
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { AuthorityStore } from "../core/store/authority-store.js"
import { JournaledState } from "../core/journal.js"
import { hashState } from "../core/hash.js"
import { historyOf } from "../core/schema/versions.js"
import { replayEntry } from "../core/schema/serve.js"
import { TodoV1, TodoV2 } from "./support/versioned-machines.js"

// These tests read the whole log back: no compaction (a small log is compacted behind
// its first snapshot otherwise).
const KEEP_LOG = { tailBytes: Infinity }

const DOC = "list"
const V1 = historyOf(TodoV2)!.at(1)

const settle = async (rt: VirtualRuntime, ms = 3000) => {
  for (let t = 0; t < ms; t += 50) await rt.run({ forMs: 50 })
}

describe("hub upgrade in the log", () => {
  test("the version change is an entry; replay across it, restarts and new replicas reach the same hash", async () => {
    const rt = new VirtualRuntime(7)
    const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
    const hubStore = new MemoryStorage()
    const reports: string[] = []
    const startHub = (m: typeof TodoV1 | typeof TodoV2) => {
      const hub = new Hub({ machines: [m], storage: hubStore, runtime: rt, snapshots: KEEP_LOG, onEvent: (e) => { if (e.type === "doc-report") reports.push(e.code) } })
      net.listen(hub)
      return hub
    }
    let hub = startHub(TodoV1)
    const a = await CanonClient.open({ transport: net.transport("a"), runtime: rt, clientId: "a", storage: new MemoryStorage() })
    const docA = await a.open(V1, DOC)
    docA.submit("add", { id: "x", title: "X" })
    docA.submit("addDone", { id: "y", title: "Y" })
    docA.submit("rename", { id: "x", title: "X2" })
    await settle(rt)
    expect(docA.confirmedSeq).toBe(3)

    // The hub restarts on v2: the document moves to v2 at seq 4.
    await hub.close()
    net.stopServer()
    hub = startHub(TodoV2)
    const doc2 = await hub.doc(DOC, TodoV2)
    expect(doc2.headSeq).toBe(4)
    expect(doc2.state).toEqual({ items: { x: { title: "X2", done: false, priority: 0 }, y: { title: "Y", done: true, priority: 0 } } })
    expect(reports).toContain("machine-upgraded")
    const auth = new AuthorityStore(hubStore)
    expect((await auth.head(DOC))?.version).toBe(2)
    const log4 = await auth.entries(DOC, 3, 1)
    expect(log4[0]).toMatchObject({ seq: 4, clientId: "$hub", name: "$migrate", args: { from: 1, to: 2 } })
    await settle(rt)
    expect(doc2.latestSnapshot?.seq).toBe(4)

    // Writers at both versions after the change; the v1 one is upcast.
    const b = await CanonClient.open({ transport: net.transport("b"), runtime: rt, clientId: "b", storage: new MemoryStorage() })
    const docB = await b.open(TodoV2, DOC)
    docB.submit("add", { id: "z", title: "Z", priority: 2 })
    docA.submit("addDone", { id: "w", title: "W" })
    await settle(rt)
    const hub2 = await hub.doc(DOC, TodoV2)
    expect(hub2.state.items.w).toEqual({ title: "W", done: true, priority: 0 })
    expect(docB.confirmedHash()).toBe(hub2.stateHash())
    // The v1 replica follows v1's view of the document.
    expect(docA.state.items.z).toEqual({ title: "Z", done: false })
    expect(docA.pendingCount).toBe(0)

    // Replay of the whole log from scratch: v1 apply, the migration at seq 4, v2 apply after.
    const h = historyOf(TodoV2)!
    const host = new JournaledState<unknown>(TodoV1.initial())
    let epoch = 1
    for (const e of await auth.entries(DOC, 0, 100)) epoch = replayEntry(host, DOC, h, epoch, e)
    expect(epoch).toBe(2)
    expect(hashState(host.root)).toBe(hub2.stateHash())

    // A new replica at v2 starts from the snapshot after the change, not from the v1 history.
    const c = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: new MemoryStorage() })
    const docC = await c.open(TodoV2, DOC)
    const snapshots: number[] = []
    docC.on("snapshot", (s) => { if (s.received === s.size) snapshots.push(s.seq) })
    await settle(rt)
    expect(snapshots[0]).toBeGreaterThanOrEqual(4)
    expect(docC.confirmedHash()).toBe(hub2.stateHash())

    // A restart replays across the change again (from its snapshot) to the same hash.
    const before = hub2.stateHash()
    await hub.close()
    net.stopServer()
    hub = startHub(TodoV2)
    expect((await hub.doc(DOC, TodoV2)).stateHash()).toBe(before)

    // A v2 command that v1 cannot show: the v1 replica is told, keeps its state, is read-only.
    await settle(rt, 5000)
    docB.submit("setPriority", { id: "x", priority: 3 })
    await settle(rt, 5000)
    expect(docA.updateRequired?.seq).toBe((await hub.doc(DOC, TodoV2)).headSeq)
    expect(docA.state.items.w).toEqual({ title: "W", done: true })
    for (const cl of [a, b, c]) await cl.close()
    await hub.close()
  })

  test("a hub older than a document refuses it (roll forward only)", async () => {
    const rt = new VirtualRuntime(3)
    const store = new MemoryStorage()
    const hub2 = new Hub({ machines: [TodoV2], storage: store, runtime: rt })
    const d = await hub2.doc(DOC, TodoV2)
    expect(d.headSeq).toBe(0)
    d.submit({ send: () => {}, close: () => {}, bufferedAmount: 0 } as never, "a", { type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "add", args: { id: "a", title: "A", priority: 1 } }], ackedClientSeq: 0 })
    await settle(rt, 200)
    await hub2.close()
    const hub1 = new Hub({ machines: [TodoV1], storage: store, runtime: rt })
    await expect(hub1.doc(DOC, TodoV1)).rejects.toMatchObject({ code: "machine-mismatch" })
  })
})

test("a compacted document of a versioned machine opens again after a restart (its version changes are read from the horizon on)", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hubStore = new MemoryStorage()
  const policy = { minLogBytes: 256, logRatio: 0.1, tailBytes: 64 }
  const hub = new Hub({ machines: [TodoV2], storage: hubStore, runtime: rt, snapshots: policy })
  net.listen(hub)
  const c = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: new MemoryStorage() })
  const d = await c.open(TodoV2, DOC)
  for (let i = 0; i < 40; i++) d.submit("add", { id: `i${i}`, title: `item ${i}`, priority: i % 3 })
  await settle(rt, 5000)
  expect(d.pendingCount).toBe(0)
  const before = (await hub.doc(DOC, TodoV2)).stateHash()
  expect(await new AuthorityStore(hubStore).snapshots.horizon(DOC)).toBeGreaterThan(0)
  await c.close()
  await hub.close()
  net.stopServer()
  const again = new Hub({ machines: [TodoV2], storage: hubStore, runtime: rt, snapshots: policy })
  const doc = await again.doc(DOC, TodoV2)
  expect(doc.headSeq).toBe(40)
  expect(doc.stateHash()).toBe(before)
  await again.close()
})

describe("client upgrade", () => {
  test("an old outbox the hub applied but never acknowledged, opened by new code, is applied exactly once", async () => {
    const rt = new VirtualRuntime(11)
    const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
    const hubStore = new MemoryStorage()
    // A replica behind by more than one entry gets a snapshot: the commands' entries never come back.
    const hub = new Hub({ machines: [TodoV2], storage: hubStore, runtime: rt, snapshotLagEntries: 1 , snapshots: KEEP_LOG })
    net.listen(hub)
    const store = new MemoryStorage()
    const old = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store })
    const d1 = await old.open(V1, DOC)
    d1.submit("add", { id: "c1", title: "C" })
    await settle(rt)
    expect(d1.pendingCount).toBe(0)
    // Nothing reaches the client any more: the hub applies what follows, the client never hears.
    net.stall("client")
    d1.submit("toggle", { id: "c1" })
    d1.submit("addDone", { id: "c2", title: "D" }) // upcast to two commands on the hub
    d1.submit("rename", { id: "c1", title: "C2" })
    await settle(rt)
    const hubDoc = await hub.doc(DOC, TodoV2)
    expect(hubDoc.headSeq).toBe(4)
    expect(d1.pendingCount).toBe(3)
    const snap = hubDoc.snapshotNow()
    await settle(rt, 500)
    expect((await snap).seq).toBe(4)
    await old.close()
    net.unstall("client")
    net.drop("client")

    // The app is updated: v2 code opens the v1 store (v1 state, v1 outbox).
    const fresh = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store })
    const d2 = await fresh.open(TodoV2, DOC)
    expect(d2.state.items.c1).toEqual({ title: "C2", done: true, priority: 0 }) // migrated, pending on top
    expect(d2.pendingCount).toBe(3)
    const rejected: string[] = []
    const snapshots: number[] = []
    d2.on("rejected", (e) => rejected.push(e.rejection.message))
    d2.on("snapshot", (e) => { if (e.received === e.size) snapshots.push(e.seq) })
    await settle(rt, 5000)
    expect(snapshots.length).toBeGreaterThan(0)
    expect(new Set(snapshots)).toEqual(new Set([4]))
    expect(rejected).toEqual([])
    expect(d2.pendingCount).toBe(0)
    expect(hubDoc.headSeq).toBe(4) // nothing applied twice
    expect(hubDoc.state.items).toEqual({ c1: { title: "C2", done: true, priority: 0 }, c2: { title: "D", done: true, priority: 0 } })
    expect(d2.confirmedHash()).toBe(hubDoc.stateHash())
    const entries = await new AuthorityStore(hubStore).entries(DOC, 0, 100)
    expect(entries.map((e) => e.name)).toEqual(["add", "toggle", "$batch", "retitle"])
    // Reopened again (v2 store now): the same state, nothing pending.
    await fresh.close()
    const again = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store })
    const d3 = await again.open(TodoV2, DOC)
    expect(d3.pendingCount).toBe(0)
    expect(d3.confirmedHash()).toBe(hubDoc.stateHash())
    await again.close()
    await hub.close()
  })

  test("an old outbox never sent is upcast and applied once; a store of a newer version is refused", async () => {
    const rt = new VirtualRuntime(12)
    const net = new MemoryNetwork(rt, { latency: () => 2 })
    const hub = new Hub({ machines: [TodoV2], storage: new MemoryStorage(), runtime: rt })
    net.listen(hub)
    const store = new MemoryStorage()
    const old = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store, autoConnect: false })
    const d1 = await old.open(V1, DOC)
    d1.submit("addDone", { id: "a", title: "A" })
    await d1.whenStored()
    await old.close()
    const fresh = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store })
    const d2 = await fresh.open(TodoV2, DOC)
    await settle(rt)
    const hubDoc = await hub.doc(DOC, TodoV2)
    expect(hubDoc.state.items).toEqual({ a: { title: "A", done: true, priority: 0 } })
    expect(d2.confirmedHash()).toBe(hubDoc.stateHash())
    await fresh.close()
    const back = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store, autoConnect: false })
    await expect(back.open(V1, DOC)).rejects.toMatchObject({ code: "machine-mismatch" })
    await back.close()
    await hub.close()
  })
})
