/**
 * Document lifetime on the hub: a document nobody follows is unloaded once idle (nothing
 * queued, being written, snapshotted or compacted) and, after being kept a while within
 * bounds (hub-idle-documents.test.ts), loaded again from storage on next use,
 * with its state, log and exactly-once records as they were. A document only looked at does
 * not stay in memory past those bounds; nothing in flight is lost by an unload.
 */
import { hubWorld, type WirePeer } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"
import { Hub } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { hashState } from "../core/hash.js"
import { DEFAULT_IDLE_DOCUMENTS } from "../core/authority/idle-documents.js"

const add = (clientSeq: number, id: string) => ({ clientSeq, name: "add", args: { id, title: id } })

test("documents opened and left are kept loaded within bounds, then unloaded; followed ones stay", async () => {
  const w = hubWorld()
  const looker = await w.peer()
  const stayer = await w.peer()
  w.subscribe(stayer, "kept")
  let most = 0
  for (let i = 0; i < 200; i++) {
    w.subscribe(looker, `look-${i}`)
    looker.send({ type: "unsubscribe", docId: `look-${i}` })
    if (i % 50 === 49) await w.run(300)
    most = Math.max(most, w.hub.stats().documents)
  }
  // A connection that closes while following documents leaves them too.
  for (let i = 0; i < 20; i++) w.subscribe(looker, `held-${i}`)
  await w.run(20)
  looker.conn.close("closed", "bye")
  await w.run(2_000)
  // The followed one, and the newest 64 left (the default bound), wait to be used again.
  expect(w.hub.stats()).toMatchObject({ documents: 1 + DEFAULT_IDLE_DOCUMENTS.count, connections: 1, queuedMessages: 0 })
  // Then their time is up.
  await w.run(DEFAULT_IDLE_DOCUMENTS.ms)
  expect(w.hub.stats()).toMatchObject({ documents: 1, connections: 1, queuedMessages: 0 })
  // Never more than the followed one, the bound, and those not yet idle (left within 250 ms).
  expect(most).toBeLessThanOrEqual(1 + DEFAULT_IDLE_DOCUMENTS.count + 50)
  // Still followed long after: never unloaded under its follower.
  await w.run(10_000)
  expect(w.hub.stats().documents).toBe(1)
  stayer.send({ type: "unsubscribe", docId: "kept" })
  await w.run(DEFAULT_IDLE_DOCUMENTS.ms + 1_000)
  expect(w.hub.stats().documents).toBe(0)
})

test("a reloaded document has its state, log and exactly-once records", async () => {
  const w = hubWorld({ idleDocuments: { count: 0 } })
  const a = await w.peer()
  w.subscribe(a, "d")
  await w.run(10)
  a.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [add(1, "x"), add(2, "y"), add(3, "x")] })
  await w.run(10)
  const first = await w.hub.doc("d", Todo)
  const hash = first.stateHash()
  expect(first.headSeq).toBe(2)
  a.send({ type: "unsubscribe", docId: "d" })
  await w.run(1_000)
  expect(w.hub.stats().documents).toBe(0)
  // The instance let go refuses to be written to: only one instance ever writes a document.
  expect(() => first.submit(a.conn, a.clientId, { type: "submit", docId: "d", ackedClientSeq: 0, commands: [add(4, "z")] })).toThrow(/unloaded/)
  // Back: the retries get their original outcomes (no second application), the next is new.
  w.subscribe(a, "d")
  await w.run(10)
  a.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [add(2, "y"), add(3, "x"), add(4, "z")] })
  await w.run(10)
  const second = await w.hub.doc("d", Todo)
  expect(second).not.toBe(first)
  const results = a.of("results", "d").flatMap((r) => r.outcomes)
  expect(results.slice(-3)).toEqual([
    { clientSeq: 2, seq: 2 },
    expect.objectContaining({ clientSeq: 3, rejection: expect.objectContaining({ code: "rejected" }) }),
    { clientSeq: 4, seq: 3 },
  ])
  expect(second.headSeq).toBe(3)
  // A newcomer catches up through the reloaded log to the same state.
  const b = await w.peer()
  w.subscribe(b, "d")
  await w.run(50)
  expect(b.of("entries", "d").flatMap((m) => m.entries.map((e) => e.seq))).toEqual([1, 2, 3])
  expect(hash).not.toBe(second.stateHash())
  expect(second.state).toMatchObject({ count: 3 })
})

test("an unload waits for writes in flight: a submit followed by leaving loses nothing", async () => {
  const rt = new VirtualRuntime(3)
  // Every write takes 300 ms of (virtual) disk time: longer than the idle delay.
  const storage = new MemoryStorage({ latency: { runtime: rt, ms: () => 300 } })
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, idleUnloadMs: 10, idleDocuments: { count: 0 }, snapshots: { minLogBytes: 1 } })
  const { WirePeer } = await import("./support/hub-wire.js")
  const { newClientSecret } = await import("../core/ports/runtime.js")
  const p = new WirePeer("writer000000000001")
  p.listener = hub.accept(p.conn)
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: p.clientId, machines: [], secret: newClientSecret(rt) })
  await rt.run({ forMs: 1_000 })
  p.send({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await rt.run({ forMs: 1_000 })
  let loads = 0
  const doc = await hub.doc("d", Todo)
  // The batch is being written (and then snapshotted and compacted, minLogBytes 1) when it leaves.
  p.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [add(1, "x"), add(2, "y")] })
  await rt.run({ forMs: 1 })
  p.send({ type: "unsubscribe", docId: "d" })
  await rt.run({ forMs: 100 })
  // Still loaded: its write is in flight.
  expect(hub.stats().documents).toBe(1)
  await rt.run({ forMs: 5_000 })
  expect(hub.stats().documents).toBe(0)
  expect(p.of("results", "d").flatMap((r) => r.outcomes)).toEqual([{ clientSeq: 1, seq: 1 }, { clientSeq: 2, seq: 2 }])
  const expected = hashState(doc.state)
  const again = hub.doc("d", Todo).then((d) => (loads++, d))
  await rt.run({ forMs: 2_000 })
  const reloaded = await again
  expect(loads).toBe(1)
  expect(reloaded.headSeq).toBe(2)
  expect(reloaded.stateHash()).toBe(expected)
  await hub.close()
})

test("snapshots taken for asked-for states stay paced across idle unloads: a document keeps its pacing till it has passed", async () => {
  const w = hubWorld({ snapshots: { minLogBytes: Infinity }, idleDocuments: { count: 0 } })
  const a = await w.peer()
  w.subscribe(a, "d")
  await w.run(10)
  let cs = 1
  // Some state: 200 items of 1 KB.
  for (let b = 0; b < 4; b++) {
    a.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: Array.from({ length: 50 }, () => ({ clientSeq: cs, name: "add", args: { id: `i${cs++}`, title: "t".repeat(1000) } })) })
    await w.run(20)
  }
  a.send({ type: "unsubscribe", docId: "d" })
  await w.run(400)
  expect(w.hub.stats().documents).toBe(0)
  let taken = 0
  let lastLatest: number | undefined
  const start = w.rt.now()
  const drain = async (p: WirePeer, before: number) => {
    for (let i = 0; i < 50 && p.of("synced", "d").length === before; i++) {
      await w.run(5)
      const last = p.of("snapshot-chunk", "d").at(-1)
      if (last !== undefined) p.send({ type: "snapshot-ack", docId: "d", snapshotId: last.snapshotId, received: last.offset + last.bytes.length })
    }
  }
  for (let cycle = 0; cycle < 12; cycle++) {
    let before = a.of("synced", "d").length
    w.subscribe(a, "d", 1_000_000) // ahead: gets the latest stored snapshot, no new one
    await drain(a, before)
    a.send({ type: "submit", docId: "d", ackedClientSeq: cs - 1, commands: [{ clientSeq: cs, name: "add", args: { id: `i${cs++}`, title: "x" } }] })
    await w.run(5)
    before = a.of("synced", "d").length
    a.send({ type: "fetch-state", docId: "d" })
    await drain(a, before)
    const doc = await w.hub.doc("d", Todo)
    const latest = doc.latestSnapshot?.seq
    if (latest !== lastLatest) taken++
    lastLatest = latest
    a.send({ type: "unsubscribe", docId: "d" })
    // Past the idle delay: it would be unloaded here, but for the pacing it keeps.
    await w.run(300)
  }
  const seconds = (w.rt.now() - start) / 1000
  expect(taken).toBeLessThanOrEqual(Math.floor(seconds) + 1)
  // Once the pacing has passed, nobody follows it: unloaded.
  await w.run(3_000)
  expect(w.hub.stats().documents).toBe(0)
})
