/**
 * Authority snapshots, log compaction and snapshot streams (issue 10), over the in-memory
 * network with real codec frames: compaction by bytes, load from snapshot + tail, joiners on
 * a compacted log, a stream cut and resumed, a corrupted chunk refetched, a replica behind
 * the horizon whose outbox applies exactly once, a multi-megabyte resync, crash leftovers.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, encodeCanonical, hashState, type ClientTransport, type HubEvent, type KVStore, type ServerMessage, replicaStorage } from "../core/index.js"
import { AuthorityStore, hashBytes } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import * as K from "../core/store/keys.js"
import { Snapshotter } from "../core/authority/snapshots.js"
import { JournaledState } from "../core/journal.js"
import { Todo } from "./support/machines.js"

const DOC = "notes"

/** Notes of a given size: a log that grows fast in bytes. */
const Notes = defineMachine({
  name: "notes",
  version: 1,
  initial: () => ({ notes: {} as Record<string, string>, count: 0 }),
  commands: {
    put: { args: Schema.Struct({ id: Schema.String, text: Schema.String }), apply: (s, a) => {
      if (s.notes[a.id] === undefined) s.count++
      s.notes[a.id] = a.text
    } },
    /** Not deterministic on purpose: the authority and a replica end with different states. */
    drift: { args: Schema.Struct({}), apply: (s) => {
      s.notes.drift = String(Math.random())
    } },
  },
})

const POLICY = { minLogBytes: 8 << 10, logRatio: 1, tailBytes: 2 << 10, chunkBytes: 4 << 10 }

const world = (options: { storage?: KVStore; snapshots?: typeof POLICY | { tailBytes: number } } = {}) => {
  const rt = new VirtualRuntime(9)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const storage = options.storage ?? new MemoryStorage()
  const events: HubEvent[] = []
  let hub: Hub
  const start = () => {
    hub = new Hub({
      machines: [Notes, Todo], storage, runtime: rt, onEvent: (e) => events.push(e),
      snapshots: options.snapshots ?? POLICY, snapshotWindowBytes: 128 << 10, quietCheckpointMs: 200,
    })
    net.listen(hub)
    return hub
  }
  start()
  const drive = async <T>(p: Promise<T>, ms = 60_000): Promise<T> => {
    let done = false
    p.then(() => { done = true }, () => { done = true })
    for (let t = 0; !done && t < ms; t += 10) await rt.run({ forMs: 10 })
    if (!done) throw new Error(`did not settle within ${ms} virtual ms`)
    return p
  }
  const client = async (name: string, opts: { storage?: KVStore; transport?: ClientTransport; autoConnect?: boolean } = {}) => {
    const c = await drive(CanonClient.open({
      transport: opts.transport ?? net.transport(name), runtime: rt, machines: [Notes], backoff: { baseMs: 20, maxMs: 100 },
      ...(opts.storage ? { storage: replicaStorage(opts.storage) } : {}), ...(opts.autoConnect === false ? { autoConnect: false } : {}),
    }))
    const doc = await drive(c.open(Notes, DOC))
    return { client: c, doc }
  }
  const settle = async (docs: Array<{ synced: boolean; pendingCount: number; confirmedSeq: number }>, head: () => number) => {
    await rt.run({ forMs: 30_000, until: () => docs.every((d) => d.synced && d.pendingCount === 0 && d.confirmedSeq === head()) })
  }
  return { rt, net, storage, events, start, drive, client, settle, hub: () => hub }
}

const text = (n: number, seed: string) => seed.repeat(Math.ceil(n / seed.length)).slice(0, n)

/** Writes `n` notes of `bytes` each through a client, confirmed. */
const writeNotes = async (w: ReturnType<typeof world>, doc: Awaited<ReturnType<ReturnType<typeof world>["client"]>>["doc"], n: number, bytes: number, prefix = "n") => {
  const receipts = Array.from({ length: n }, (_, i) => doc.submit("put", { id: `${prefix}${i}`, text: text(bytes, `${prefix}${i}-`) }))
  await w.drive(Promise.all(receipts))
}

describe("snapshots and compaction on the authority", () => {
  test("the log is snapshotted once it outgrows the policy, and compacted behind it keeping a tail", async () => {
    const w = world()
    const a = await w.client("a")
    await writeNotes(w, a.doc, 60, 400)
    await w.rt.run({ forMs: 500 })
    const store = new AuthorityStore(w.storage)
    const metas = await store.snapshots.metas(DOC)
    expect(metas).toHaveLength(1)
    const horizon = await store.snapshots.horizon(DOC)
    expect(horizon).toBeGreaterThan(0)
    expect(horizon).toBeLessThan(metas[0]!.seq)
    const kept = await store.entries(DOC, horizon, 1000)
    expect(kept[0]!.seq).toBe(horizon + 1)
    // The kept tail is about tailBytes of entries.
    const tail = kept.filter((e) => e.seq <= metas[0]!.seq)
    expect(tail.length * 400).toBeGreaterThanOrEqual(POLICY.tailBytes - 400)
    const prefix = K.authEntryPrefix(DOC)
    expect(await w.storage.range({ gte: prefix, lt: K.authEntry(DOC, horizon + 1) })).toEqual([])
  })

  test("the kept tail is at most the snapshot's size: a replica further behind gets fewer bytes from the snapshot", async () => {
    const w = world({ snapshots: { ...POLICY, tailBytes: 64 << 10 } })
    const a = await w.client("a")
    // One note rewritten 60 times: a small state, a log of ~24 KiB.
    const receipts = Array.from({ length: 60 }, (_, i) => a.doc.submit("put", { id: "x", text: text(400, `${i}-`) }))
    await w.drive(Promise.all(receipts))
    await w.rt.run({ forMs: 500 })
    const store = new AuthorityStore(w.storage)
    const [meta] = await store.snapshots.metas(DOC)
    expect(meta!.size).toBeLessThan(1000)
    const horizon = await store.snapshots.horizon(DOC)
    const tail = (await store.entries(DOC, horizon, 1000)).filter((e) => e.seq <= meta!.seq)
    // The tail is the fewest entries reaching the snapshot's size (each ~400 B): at most 3.
    expect(tail.length).toBeGreaterThan(0)
    expect(tail.length).toBeLessThanOrEqual(3)
    expect(horizon).toBe(meta!.seq - tail.length)
    // A replica joining now converges from the snapshot and what follows.
    const b = await w.client("b")
    await w.settle([a.doc, b.doc], () => a.doc.confirmedSeq)
    expect(b.doc.confirmedHash()).toBe(a.doc.confirmedHash())
  })

  test("a reload opens from the newest snapshot plus the tail and has the same state", async () => {
    const w = world()
    const a = await w.client("a")
    await writeNotes(w, a.doc, 80, 300)
    await w.rt.run({ forMs: 500 })
    const live = await w.hub().doc(DOC, Notes)
    const reloaded = new Hub({ machines: [Notes], storage: w.storage, runtime: w.rt })
    const doc = await reloaded.doc(DOC, Notes)
    expect(doc.headSeq).toBe(live.headSeq)
    expect(doc.stateHash()).toBe(live.stateHash())
    expect(doc.latestSnapshot?.seq).toBeGreaterThan(0)
  })

  test("a snapshot that fails verification is skipped with a report; the log is replayed instead", async () => {
    const w = world({ snapshots: { ...POLICY, tailBytes: Infinity } })
    const a = await w.client("a")
    await writeNotes(w, a.doc, 60, 400)
    await w.rt.run({ forMs: 500 })
    const live = await w.hub().doc(DOC, Notes)
    const meta = (await new AuthorityStore(w.storage).snapshots.metas(DOC))[0]!
    const key = K.authChunk(DOC, meta.seq, 0)
    const chunk = (await w.storage.get(key))!
    chunk[10] = chunk[10]! ^ 0xff
    await w.storage.batch([{ type: "put", key, value: chunk }])
    const events: HubEvent[] = []
    const reloaded = new Hub({ machines: [Notes], storage: w.storage, runtime: w.rt, onEvent: (e) => events.push(e) })
    const doc = await reloaded.doc(DOC, Notes)
    expect(doc.stateHash()).toBe(live.stateHash())
    expect(events).toContainEqual(expect.objectContaining({ type: "doc-report", code: "snapshot-invalid", message: expect.stringContaining(`at seq ${meta.seq}`) }))
  })

  test("chunks of a snapshot cut by a crash (no meta) are never read and are cleaned up", async () => {
    const w = world()
    const store = new AuthorityStore(w.storage)
    await store.snapshots.putChunks(DOC, 5, 0, [new Uint8Array([1, 2, 3])])
    const a = await w.client("a")
    await writeNotes(w, a.doc, 3, 10)
    await w.rt.run({ forMs: 100 })
    expect(await w.storage.get(K.authChunk(DOC, 5, 0))).toBeUndefined()
    expect(a.doc.confirmedSeq).toBe(3)
  })
})

describe("snapshot streams", () => {
  test("a new replica on a compacted log gets a snapshot stream, then the tail, and converges", async () => {
    const w = world()
    const a = await w.client("a")
    await writeNotes(w, a.doc, 80, 300)
    await w.rt.run({ forMs: 500 })
    expect(w.hub()).toBeDefined()
    const b = await w.client("b")
    const progress: number[] = []
    b.doc.on("snapshot", (p) => progress.push(p.received))
    await w.settle([a.doc, b.doc], () => a.doc.confirmedSeq)
    expect(b.doc.confirmedHash()).toBe(a.doc.confirmedHash())
    expect(b.doc.state.count).toBe(80)
  })

  test("a stream cut mid-way resumes from the last acknowledged offset of the same snapshot", async () => {
    const w = world({ snapshots: { ...POLICY, minLogBytes: 64 << 10 } })
    const a = await w.client("a")
    await writeNotes(w, a.doc, 100, 1000, "big")
    await w.rt.run({ forMs: 500 })
    // Count the snapshot bytes that reach b, and cut the link after the first 40 KiB.
    const offsets: number[] = []
    let cut = false
    const base = w.net.transport("b")
    const transport: ClientTransport = {
      connect: (listener) => base.connect({
        ...listener,
        onMessage: (m: ServerMessage) => {
          if (m.type === "snapshot-chunk") {
            offsets.push(m.offset)
            if (!cut && m.offset >= 40 << 10) {
              cut = true
              w.net.drop("b")
            }
          }
          listener.onMessage(m)
        },
      }),
    }
    const b = await w.client("b", { transport })
    await w.settle([a.doc, b.doc], () => a.doc.confirmedSeq)
    expect(cut).toBe(true)
    expect(b.doc.confirmedHash()).toBe(a.doc.confirmedHash())
    // After the cut the stream did not start again from 0.
    const afterCut = offsets.slice(offsets.findIndex((o) => o >= 40 << 10) + 1)
    expect(afterCut.length).toBeGreaterThan(0)
    expect(Math.min(...afterCut)).toBeGreaterThan(16 << 10)
  })

  test("a corrupted chunk is detected before install: the stream is discarded and fetched again", async () => {
    const w = world()
    const a = await w.client("a")
    await writeNotes(w, a.doc, 80, 300)
    await w.rt.run({ forMs: 500 })
    let corrupted = false
    let begins = 0
    const base = w.net.transport("b")
    const transport: ClientTransport = {
      connect: (listener) => base.connect({
        ...listener,
        onMessage: (m: ServerMessage) => {
          if (m.type === "snapshot-begin") begins++
          if (m.type === "snapshot-chunk" && !corrupted && m.bytes.length > 20) {
            corrupted = true
            const bytes = m.bytes.slice()
            bytes[7] = bytes[7]! ^ 0x55
            return listener.onMessage({ ...m, bytes })
          }
          listener.onMessage(m)
        },
      }),
    }
    const b = await w.client("b", { transport })
    await w.settle([a.doc, b.doc], () => a.doc.confirmedSeq)
    expect(corrupted).toBe(true)
    // Discarded (never installed) and streamed again.
    expect(begins).toBe(2)
    expect(b.doc.confirmedHash()).toBe(a.doc.confirmedHash())
  })

  test("a replica behind the compaction horizon converges, and its outbox is applied exactly once", async () => {
    const w = world()
    const b = await w.client("b", { storage: new MemoryStorage() })
    // b's first command is applied, but b never hears back (its link is cut first).
    w.net.partition("b")
    const lost = b.doc.submit("put", { id: "b-first", text: "from b" })
    await w.rt.run({ forMs: 50 })
    w.net.heal("b")
    await w.rt.run({ forMs: 5 })
    w.net.partition("b")
    const offline = [b.doc.submit("put", { id: "b-offline-1", text: "x" }), b.doc.submit("put", { id: "b-offline-2", text: "y" })]
    const a = await w.client("a")
    await writeNotes(w, a.doc, 80, 300)
    await w.rt.run({ forMs: 500 })
    expect(await new AuthorityStore(w.storage).snapshots.horizon(DOC)).toBeGreaterThan(b.doc.confirmedSeq)
    w.net.heal("b")
    await w.settle([a.doc, b.doc], () => a.doc.confirmedSeq)
    await w.drive(Promise.all([lost, ...offline]))
    expect(b.doc.confirmedHash()).toBe(a.doc.confirmedHash())
    const entries = await new AuthorityStore(w.storage).entries(DOC, (await new AuthorityStore(w.storage).snapshots.horizon(DOC)), 10_000)
    const mine = entries.filter((e) => e.clientId === b.client.clientId).map((e) => e.clientSeq)
    expect(new Set(mine).size).toBe(mine.length)
    const doc = await w.hub().doc(DOC, Notes)
    expect(Object.keys(doc.state.notes).filter((k) => k.startsWith("b-")).sort()).toEqual(["b-first", "b-offline-1", "b-offline-2"])
  })

  test("a replica whose multi-megabyte state desyncs gets it back by a snapshot stream and converges", async () => {
    const w = world({ snapshots: { ...POLICY, minLogBytes: 64 << 20, chunkBytes: 256 << 10 } })
    const a = await w.client("a")
    await writeNotes(w, a.doc, 50, 100_000, "mb") // 5 MB of notes
    const desyncs: number[] = []
    a.doc.on("desync", (d) => desyncs.push(d.seq))
    await w.drive(a.doc.submit("drift", {}))
    await w.rt.run({ forMs: 2000 })
    await w.settle([a.doc], () => a.doc.confirmedSeq)
    expect(desyncs.length).toBeGreaterThan(0)
    const hub = await w.hub().doc(DOC, Notes)
    expect(a.doc.confirmedHash()).toBe(hub.stateHash())
    expect(hashState(a.doc.snapshot())).toBe(hub.stateHash())
  })
})

describe("snapshots in the background", () => {
  test("a snapshot taken while commands keep landing holds exactly the state at its seq", async () => {
    const w = world({ snapshots: { minLogBytes: 1 << 30, logRatio: 1, tailBytes: Infinity, chunkBytes: 1024 } })
    const a = await w.client("a")
    await writeNotes(w, a.doc, 40, 2000)
    const doc = await w.hub().doc(DOC, Notes)
    const before = encodeCanonical(doc.state)
    const seq = doc.headSeq
    const job = doc.snapshotNow()
    // While it is encoded a slice at a time, the document changes between slices: existing
    // notes rewritten, new ones added (straight to the authority: no network in between).
    const conn = { send() {}, close() {}, bufferedAmount: 0 }
    const commands = [
      ...Array.from({ length: 10 }, (_, i) => ({ name: "put", args: { id: `n${i}`, text: "changed" } })),
      ...Array.from({ length: 10 }, (_, i) => ({ name: "put", args: { id: `new${i}`, text: "new" } })),
    ]
    let headsSeenDuringJob = 0
    let done = false
    void job.then(() => { done = true })
    for (let i = 0; i < commands.length; i++) {
      doc.submit(conn, "writer", { type: "submit", docId: DOC, commands: [{ clientSeq: i + 1, ...commands[i]! }], ackedClientSeq: 0 })
      await w.rt.run({ forMs: 0, maxEvents: 1 })
      if (!done && doc.headSeq > seq) headsSeenDuringJob++
    }
    const meta = await w.drive(job)
    expect(meta.seq).toBe(seq)
    expect(meta.chunks).toBeGreaterThan(20)
    expect(doc.headSeq).toBe(seq + 20)
    // Commands were committed while the snapshot was still being written.
    expect(headsSeenDuringJob).toBeGreaterThan(5)
    const store = new AuthorityStore(w.storage)
    const parts: Uint8Array[] = []
    for (let i = 0; i < meta.chunks; i++) parts.push(await store.snapshots.chunk(DOC, meta.seq, i))
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let o = 0
    for (const p of parts) {
      bytes.set(p, o)
      o += p.length
    }
    expect(bytes).toEqual(before)
    expect(meta.hash).toBe(hashBytes(before))
  })
})

test("asking for a snapshot again with nothing committed since gives the same one, and keeps its chunks", async () => {
  const w = world({ snapshots: { ...POLICY, minLogBytes: 1 << 30 } })
  const a = await w.client("a")
  await writeNotes(w, a.doc, 10, 100)
  const doc = await w.hub().doc(DOC, Notes)
  const first = await w.drive(doc.snapshotNow())
  const again = await w.drive(doc.snapshotNow())
  expect(again).toMatchObject({ seq: first.seq, hash: first.hash, size: first.size, chunks: first.chunks })
  const store = new AuthorityStore(w.storage)
  expect(await store.snapshots.chunk(DOC, first.seq, 0)).toBeInstanceOf(Uint8Array)
  expect((await store.snapshots.metas(DOC)).map((m) => m.seq)).toEqual([first.seq])
})

test("a second snapshot job at the same seq as the latest does not delete what it just wrote", async () => {
  const rt = new VirtualRuntime(1)
  const storage = new MemoryStorage()
  const store = new AuthorityStore(storage)
  const snapshotter = new Snapshotter("d", store.snapshots, rt, { chunkBytes: 16 }, () => {})
  const host = new JournaledState({ notes: { a: "x".repeat(40) } })
  const drive = async <T>(p: Promise<T>): Promise<T> => {
    let done = false
    p.then(() => { done = true }, () => { done = true })
    while (!done) await rt.run({ forMs: 1 })
    return p
  }
  const first = await drive(snapshotter.take(host, 10, 0, true))
  const second = await drive(snapshotter.take(host, 10, 0, true))
  expect(second.hash).toBe(first.hash)
  await rt.run({ forMs: 10 })
  expect(await store.snapshots.metas("d")).toHaveLength(1)
  for (let i = 0; i < second.chunks; i++) expect(await store.snapshots.chunk("d", 10, i)).toBeInstanceOf(Uint8Array)
})
