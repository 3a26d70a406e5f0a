/**
 * The snapshot stream reads a stored snapshot by the chunk size it was written with. It used
 * the hub's `snapshots.chunkBytes` of today to name the chunk holding a byte offset, and the
 * meta does not record the size it was written with: a hub restarted with another chunk size
 * (or serving a snapshot `canon compact` wrote at 256 KiB) sent the wrong chunks (a new replica
 * discarded each stream on its hash and asked again, forever), read chunks past the meta's
 * (left by a write cut at the same seq: one stream made of two writes), or, with a larger size
 * today, re-read one cached chunk forever without yielding: the whole hub hung.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type HubEvent, type ServerMessage } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Snapshotter } from "../core/authority/snapshots.js"
import { SnapshotSender, type ChunkReader } from "../core/authority/snapshot-sender.js"
import type { SnapshotMeta } from "../core/store/snapshot-store.js"
import { JournaledState } from "../core/journal.js"
import { running } from "./support/virtual-time.js"

const DOC = "notes"
const Notes = defineMachine({
  name: "notes",
  version: 1,
  initial: () => ({ notes: {} as Record<string, string> }),
  commands: { put: { args: Schema.Struct({ id: Schema.String, text: Schema.String }), apply: (s, a) => { s.notes[a.id] = a.text } } },
})

describe("a hub restarted with another chunk size serves the snapshot stored before", () => {
  for (const [before, after] of [[4 << 10, 1 << 10], [1 << 10, 64 << 10]] as const) {
    test(`stored in ${before}-byte chunks, served with ${after}: a new replica converges`, async () => {
      const storage = new MemoryStorage()
      const rt = new VirtualRuntime(9)
      const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
      const events: HubEvent[] = []
      const hubWith = (chunkBytes: number) => {
        const hub = new Hub({
          machines: [Notes], storage, runtime: rt, onEvent: (e) => events.push(e),
          snapshots: { minLogBytes: 8 << 10, logRatio: 1, tailBytes: 2 << 10, chunkBytes },
        })
        net.listen(hub)
        return hub
      }
      const first = hubWith(before)
      const writer = await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt }))
      const w = await running(rt, writer.open(Notes, DOC))
      for (let i = 0; i < 60; i++) w.submit("put", { id: `n${i}`, text: `n${i}-`.repeat(100) })
      await rt.run({ forMs: 2000 })
      // A snapshot of several chunks is stored, and the log before it compacted: a new replica must stream it.
      const store = new AuthorityStore(storage)
      expect((await running(rt, store.snapshots.metas(DOC)))[0]!.chunks).toBeGreaterThan(2)
      expect(await running(rt, store.snapshots.horizon(DOC))).toBeGreaterThan(0)
      const want = (await running(rt, first.doc(DOC, Notes))).stateHash()
      await running(rt, writer.close())
      await running(rt, first.close())

      hubWith(after)
      let begins = 0
      const base = net.transport("r")
      const transport = { connect: (l: Parameters<typeof base.connect>[0]) => base.connect({ ...l, onMessage: (m: ServerMessage) => { if (m.type === "snapshot-begin") begins++; l.onMessage(m) } }) }
      const reader = await running(rt, (await running(rt, CanonClient.open({ transport, runtime: rt }))).open(Notes, DOC))
      await rt.run({ forMs: 20_000, until: () => reader.synced && reader.confirmedHash() === want })
      expect(reader.confirmedHash()).toBe(want)
      expect(begins).toBe(1)
      expect(events.filter((e) => e.type === "doc-report")).toEqual([])
    })
  }
})

/** A snapshot of `host` stored at seq 10 in `chunkBytes`-byte chunks, and its bytes as stored. */
const stored = async (rt: VirtualRuntime, store: AuthorityStore, host: JournaledState<unknown>, chunkBytes: number) => {
  const meta = await running(rt, new Snapshotter("d", store.snapshots, rt, { chunkBytes }, () => {}).take(host, 10, 0, true))
  const bytes = new Uint8Array(meta.size)
  for (let i = 0, o = 0; i < meta.chunks; i++) {
    const c = await store.snapshots.chunk("d", 10, i)
    bytes.set(c, o)
    o += c.length
  }
  return { meta, bytes }
}

/** Streams `meta` through a sender reading by `read` (at most 1,000 reads: the old sender never stopped); what the replica got. */
const stream = async (meta: SnapshotMeta, read: ChunkReader) => {
  const reads: number[] = []
  const got = new Uint8Array(meta.size + (64 << 10))
  let end = 0
  let error: unknown
  const conn = {
    send: (m: ServerMessage) => {
      if (m.type !== "snapshot-chunk") return
      got.set(m.bytes, m.offset)
      end = Math.max(end, m.offset + m.bytes.length)
    },
    close() {},
    bufferedAmount: 0,
  }
  await new Promise<void>((resolve) => {
    const bounded: ChunkReader = (seq, i) => (reads.push(i) > 1000 ? Promise.reject(new Error("1000 chunk reads")) : read(seq, i))
    new SnapshotSender("d", meta, bounded, conn as never, 1 << 20, () => true, resolve, resolve, (e) => { error = e; resolve() }).start()
  })
  return { got: got.subarray(0, end), reads, error }
}

test("the stream reads each stored chunk about once, whatever the hub's chunk size today", async () => {
  const rt = new VirtualRuntime(1)
  const store = new AuthorityStore(new MemoryStorage())
  const { meta, bytes } = await stored(rt, store, new JournaledState({ notes: { a: "x".repeat(4000) } }), 1024)
  expect(meta.chunks).toBe(4)
  const s = await stream(meta, (seq, i) => store.snapshots.chunk("d", seq, i))
  expect(s.error).toBeUndefined()
  expect(s.got).toEqual(bytes)
  // Chunk 0 once more: its length is the size the snapshot was written with.
  expect(s.reads).toEqual([0, 0, 1, 2, 3])
})

test("chunks a cut write left past the meta's are never streamed", async () => {
  const rt = new VirtualRuntime(1)
  const store = new AuthorityStore(new MemoryStorage())
  // A write at seq 10 in 1 KiB chunks, cut before its meta (its bytes 0xee), then a whole one in 4 KiB chunks.
  for (let i = 0; i < 6; i++) await store.snapshots.putChunks("d", 10, i, [new Uint8Array(1024).fill(0xee)])
  const { meta, bytes } = await stored(rt, store, new JournaledState({ notes: { a: "x".repeat(5000) } }), 4096)
  expect(meta.chunks).toBe(2)
  const s = await stream(meta, (seq, i) => store.snapshots.chunk("d", seq, i))
  expect(s.error).toBeUndefined()
  expect(s.got).toEqual(bytes)
  expect(Math.max(...s.reads)).toBe(1)
})

test("a stored chunk shorter than its place fails the stream as storage-corrupt, after a bounded number of reads", async () => {
  const rt = new VirtualRuntime(1)
  const store = new AuthorityStore(new MemoryStorage())
  const { meta } = await stored(rt, store, new JournaledState({ notes: { a: "x".repeat(4000) } }), 1024)
  const s = await stream(meta, async (seq, i) => {
    const c = await store.snapshots.chunk("d", seq, i)
    return i === 1 ? c.subarray(0, 100) : c
  })
  expect(s.error).toMatchObject({ code: "storage-corrupt" })
  expect(String((s.error as Error).message)).toMatch(/chunk 1 holds 100 bytes, not 1024/)
  expect(s.reads.length).toBeLessThanOrEqual(4)
})

test("an acknowledgement past the chunk being read is credit: the stream goes on, not storage-corrupt", async () => {
  // Simulator seeds 171 and 175: "chunk 1 holds 1024 bytes, not 1024": a replica's ack arrived
  // while the sender awaited chunk 1's read and moved the offset past it, and the check after
  // the read took the chunk for a short one. The hub failed the document's stream. (An ack no
  // longer moves the offset at all: test/snapshot-stale-ack.test.ts.)
  const rt = new VirtualRuntime(1)
  const store = new AuthorityStore(new MemoryStorage())
  const { meta, bytes } = await stored(rt, store, new JournaledState({ notes: { a: "x".repeat(4000) } }), 1024)
  let sender: SnapshotSender | undefined
  let acked = false
  const got = new Uint8Array(meta.size)
  let error: unknown
  const conn = {
    send: (m: ServerMessage) => { if (m.type === "snapshot-chunk") got.set(m.bytes, m.offset) },
    close() {},
    bufferedAmount: 0,
  }
  await new Promise<void>((resolve) => {
    const read: ChunkReader = async (seq, i) => {
      const c = await store.snapshots.chunk("d", seq, i)
      // While chunk 1 is read, the replica says it has everything through chunk 2.
      if (i === 1 && !acked) {
        acked = true
        sender!.ack(meta.seq, 3 * 1024)
      }
      return c
    }
    sender = new SnapshotSender("d", meta, read, conn as never, 1 << 20, () => true, resolve, resolve, (e) => { error = e; resolve() })
    // The replica resumes with chunk 0 and part of chunk 1.
    got.set(bytes.subarray(0, 3 * 1024))
    sender.start(1500)
  })
  expect(error).toBeUndefined()
  expect(got).toEqual(bytes)
})
