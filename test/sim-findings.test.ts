/**
 * Engine bugs the simulator found, each reduced to a deterministic test (see test/sim/).
 *
 * 1. A replica's confirm batch that fails while the next one is already queued: the next one
 *    was built (at integrate time) without the failed batch's entries, so it stored a meta
 *    ahead of a hole; a crash before a third write left a store that never opens again
 *    ("claims seq N but its state reaches M"). Found by `npm run sim -- --seed 1 --replicas 4
 *    --hostile 0 --app-bugs 0 --replica-write-failures 0.03 --big-kib 0`.
 * 2. The hub's disk failing while it registers a new client's identity was answered as a
 *    protocol error ("Internal error: ..."), the code for a peer that broke the protocol,
 *    instead of a storage failure the client retries. Found by `npm run sim -- --seed 3
 *    --replicas 4 --hostile 0 --app-bugs 0 --replica-write-failures 0 --big-kib 0`.
 * 3. A catch-up that failed on the hub's disk (here: writing the snapshot a desynced replica
 *    asked for) dropped the follower for good: the replica's subscription stood, so it never
 *    asked again and saw no entry of that document until it reconnected, while its own
 *    commands were still applied. Found by `npm run sim -- --seeds 500 --replicas 5` (seed 423
 *    on 5e28f35).
 * 4. A hello whose identity was being read from the hub's disk as the hub closed registered
 *    its client after close() resolved: the closed hub wrote to a disk its owner may already
 *    have closed or handed on (DESIGN invariant 10). Found by `npm run sim -- --seed 109
 *    --replicas 5 --presence-churn 3 --deaf-askers 2 --crdt-poison 2` (on 5b23e29).
 */
import { CanonClient, Hub, type BatchOp, type ServerMessage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import * as K from "../core/store/keys.js"
import { Todo } from "./support/machines.js"

const DOC = "list"

const startsWith = (key: Uint8Array, prefix: Uint8Array): boolean => prefix.every((b, i) => key[i] === b)

const drive = async <T>(rt: VirtualRuntime, p: Promise<T>, maxMs = 10_000): Promise<T> => {
  let done = false
  p.then(() => { done = true }, () => { done = true })
  for (let ms = 0; !done && ms < maxMs; ms += 5) await rt.run({ forMs: 5 })
  return p
}

test("a failed replica confirm write followed by a queued one leaves no hole in the store (reopens after a crash)", async () => {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const entryPrefix = K.replicaEntryPrefix(DOC)
  let confirms = 0
  // The reader's disk is slow (10 ms a write) and fails its first confirm batch.
  const disk = new MemoryStorage({
    latency: { runtime: rt, ms: () => 10 },
    failWrite: (ops: ReadonlyArray<BatchOp>) => ops.some((op) => op.type === "put" && startsWith(op.key, entryPrefix)) && ++confirms === 1,
  })
  const reader = await drive(rt, CanonClient.open({ transport: net.transport("reader"), runtime: rt, storage: disk }))
  const readerDoc = await drive(rt, reader.open(Todo, DOC))
  const writer = await drive(rt, CanonClient.open({ transport: net.transport("writer"), runtime: rt }))
  const doc = await drive(rt, writer.open(Todo, DOC))
  await rt.run({ forMs: 50 })
  // Two entries reach the reader 3 ms apart: the second confirm is queued while the first is on disk.
  const a = doc.submit("add", { id: "a", title: "one" })
  await rt.run({ forMs: 3 })
  const b = doc.submit("add", { id: "b", title: "two" })
  await drive(rt, Promise.all([a, b]))
  await rt.run({ forMs: 100 })
  expect(readerDoc.confirmedSeq).toBe(2)
  expect(confirms).toBe(2)
  // The reader's process dies; the next incarnation opens what its disk holds.
  disk.crash()
  const again = await drive(rt, CanonClient.open({ transport: net.transport("reader2"), runtime: rt, storage: disk }))
  const reopened = await drive(rt, again.open(Todo, DOC)).then((d) => d.confirmedSeq, (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`)
  expect(typeof reopened === "number" ? "opens" : reopened).toBe("opens")
})

test("the hub's disk failing while it records a new client's identity is a storage failure, not a protocol error", async () => {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const identityPrefix = new Uint8Array([0x69])
  let failNext = true
  const storage = new MemoryStorage({ failWrite: (ops) => ops.some((op) => startsWith(op.key, identityPrefix)) && failNext && !(failNext = false) })
  const events: string[] = []
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, onEvent: (e) => events.push(e.type === "protocol-error" ? `protocol-error: ${e.message}` : e.type) })
  net.listen(hub)
  const heard: Array<ServerMessage | { closed: string }> = []
  const conn = net.transport("raw").connect({
    onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 2 }, clientId: "client-0001", secret: "a-secret-of-enough-characters", machines: [] }),
    onMessage: (m) => heard.push(m),
    onClose: (i) => heard.push({ closed: i.code }),
  })
  await rt.run({ forMs: 50 })
  expect(events.filter((e) => e.startsWith("protocol-error"))).toEqual([])
  expect(heard).toContainEqual({ closed: "storage-failed" })
})

test("a replica whose snapshot install fails to write, then confirms more entries, still reopens after a crash", async () => {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const hub = new Hub({
    machines: [Todo], storage: new MemoryStorage(), runtime: rt,
    snapshots: { minLogBytes: 256, logRatio: 0.1, tailBytes: 64 }, snapshotLagEntries: 4,
  })
  net.listen(hub)
  const writer = await drive(rt, CanonClient.open({ transport: net.transport("writer"), runtime: rt }))
  const doc = await drive(rt, writer.open(Todo, DOC))
  for (let i = 0; i < 30; i++) await drive(rt, doc.submit("add", { id: `i${i}`, title: `item ${i}` }))
  await rt.run({ forMs: 200 })
  // A new replica joins by a snapshot stream; the write of the installed snapshot fails.
  const snapshotKey = K.replicaSnapshot(DOC)
  let installs = 0
  const disk = new MemoryStorage({ failWrite: (ops) => ops.some((op) => op.type === "put" && startsWith(op.key, snapshotKey)) && ++installs === 1 })
  const reader = await drive(rt, CanonClient.open({ transport: net.transport("reader"), runtime: rt, storage: disk }))
  const readerDoc = await drive(rt, reader.open(Todo, DOC))
  await rt.run({ forMs: 200 })
  expect(installs).toBeGreaterThanOrEqual(1)
  await drive(rt, doc.submit("add", { id: "late", title: "after the join" }))
  await rt.run({ forMs: 200 })
  expect(readerDoc.confirmedSeq).toBe(31)
  disk.crash()
  const again = await drive(rt, CanonClient.open({ transport: net.transport("reader2"), runtime: rt, storage: disk }))
  const reopened = await drive(rt, again.open(Todo, DOC)).then((d) => d.confirmedSeq, (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`)
  expect(typeof reopened === "number" ? "opens" : reopened).toBe("opens")
})

test("a catch-up that fails on the hub's disk is tried again: the replica gets its snapshot once the disk recovers", async () => {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const snapshotKeys = [K.authSnapshotPrefix(DOC), K.authChunkPrefix(DOC)]
  let failing = 0
  const storage = new MemoryStorage({ failWrite: (ops) => failing > 0 && ops.some((op) => snapshotKeys.some((p) => startsWith(op.key, p))) && failing-- > 0 })
  const hub = new Hub({ machines: [Todo], storage, runtime: rt })
  net.listen(hub)
  const writer = await drive(rt, CanonClient.open({ transport: net.transport("writer"), runtime: rt }))
  const doc = await drive(rt, writer.open(Todo, DOC))
  for (let i = 0; i < 5; i++) await drive(rt, doc.submit("add", { id: `i${i}`, title: `item ${i}` }))
  const heard: ServerMessage[] = []
  const conn = net.transport("reader").connect({
    onOpen: () => {
      conn.send({ type: "hello", protocol: { min: 1, max: 2 }, clientId: "reader-0001", secret: "a-secret-of-enough-characters", machines: [] })
      conn.send({ type: "subscribe", docId: DOC, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    },
    onMessage: (m) => heard.push(m),
    onClose: () => {},
  })
  await rt.run({ forMs: 100 })
  // The reader asks for the whole state (as after a desync); the snapshot write fails twice.
  failing = 2
  conn.send({ type: "fetch-state", docId: DOC })
  await rt.run({ forMs: 5_000 })
  expect(heard.filter((m) => m.type === "error").map((m) => (m as { code: string }).code)).toEqual(["catch-up-failed", "catch-up-failed"])
  expect(heard.some((m) => m.type === "snapshot-begin")).toBe(true)
  // Live again: a new command reaches the reader.
  await drive(rt, doc.submit("add", { id: "late", title: "after the disk recovered" }))
  await rt.run({ forMs: 100 })
  const seqs = heard.flatMap((m) => (m.type === "entries" ? m.entries.map((e) => e.seq) : []))
  expect(Math.max(...seqs)).toBe(6)
  await drive(rt, writer.close())
  await drive(rt, hub.close())
})

test("a hello being proved as the hub closes records nothing after close() resolves", async () => {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  // Reads take 20 ms of virtual time: the hello's identity read is in flight when the hub closes.
  const storage = new MemoryStorage({ latency: { runtime: rt, ms: () => 0, readMs: () => 20 } })
  let closedAt: number | undefined
  const writesAfterClose: string[] = []
  const batch = storage.batch.bind(storage)
  storage.batch = (ops, options) => {
    if (closedAt !== undefined) writesAfterClose.push(...ops.map((o) => new TextDecoder().decode(o.key)))
    return batch(ops, options)
  }
  const hub = new Hub({ machines: [Todo], storage, runtime: rt })
  net.listen(hub)
  const conn = net.transport("raw").connect({
    onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 2 }, clientId: "client-0001", secret: "a-secret-of-enough-characters", machines: [] }),
    onMessage: () => {},
    onClose: () => {},
  })
  await rt.run({ forMs: 5 })
  const closed = hub.close().then(() => void (closedAt = rt.now()))
  await drive(rt, closed)
  expect(closedAt).toBeDefined()
  await rt.run({ forMs: 100 })
  expect(writesAfterClose).toEqual([])
})
