/**
 * One rule for everything the hub sends a reader (followers.ts `canSend`): over the
 * high-water mark it is paused, over the hard limit closed with `slow-consumer`, whether what
 * it is sent is entries of a catch-up page, presence, or the chunks of a snapshot stream it
 * claims to have read. Peers here model a socket's buffer (support/hub-wire.ts): a stalled
 * one reads nothing until told to, and the test watches the most the hub left unread for it.
 */
import { hubWorld } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"
import { TodoV1, TodoV2 } from "./support/versioned-machines.js"
import { decodeCanonical } from "../core/canonical.js"

const KiB = 1 << 10

/** A peer that commits `count` commands to `docId`, one submit each, virtual time moving `pauseMs` after each. */
const write = async (w: ReturnType<typeof hubWorld>, docId: string, count: number, pauseMs: number, command: (i: number) => { name: string; args: unknown }): Promise<void> => {
  const writer = await w.peer()
  w.subscribe(writer, docId)
  await w.run(10)
  for (let i = 1; i <= count; i++) {
    writer.send({ type: "submit", docId, ackedClientSeq: 0, commands: [{ clientSeq: i, ...command(i) }] })
    await w.run(pauseMs)
  }
}

test("presence to a stalled reader is held at the high-water mark, latest per client, and sent when it reads", async () => {
  const highWaterMark = 64 * KiB
  const w = hubWorld({ highWaterMark, hardLimit: 512 * KiB })
  const victim = await w.peer()
  w.subscribe(victim, "doc")
  const attackers = [await w.peer(), await w.peer(), await w.peer()]
  for (const a of attackers) w.subscribe(a, "doc")
  await w.run(10)
  victim.stall()
  const blob = "x".repeat(4000)
  // 3 x 400 updates of 4 KB: 4.8 MB if every one were queued for the victim.
  for (let round = 0; round < 400; round++) {
    for (const a of attackers) a.send({ type: "presence-set", docId: "doc", state: { c: blob, n: round } })
    if (round % 20 === 19) await w.run(5)
  }
  await w.run(200)
  // Bounded by the mark plus one message per client, and the victim was not dropped for it.
  expect(victim.closed).toBeUndefined()
  expect(victim.maxBuffered).toBeLessThan(highWaterMark + 3 * 5 * KiB)
  victim.read()
  await w.run(200)
  // Whatever was skipped, the victim ends with every client's latest presence.
  const last = new Map<string, unknown>()
  for (const m of victim.of("presence", "doc")) last.set(m.clientId, m.state)
  for (const a of attackers) expect(last.get(a.clientId)).toEqual({ c: blob, n: 399 })
  // A client that leaves while the victim is paused is seen leaving.
  victim.stall()
  for (let i = 0; i < 40; i++) attackers[0]!.send({ type: "presence-set", docId: "doc", state: { c: blob, n: 1000 + i } })
  await w.run(5)
  attackers[1]!.send({ type: "unsubscribe", docId: "doc" })
  await w.run(100)
  victim.read()
  await w.run(200)
  for (const m of victim.of("presence", "doc")) last.set(m.clientId, m.state)
  expect(last.get(attackers[0]!.clientId)).toEqual({ c: blob, n: 1039 })
  expect(last.get(attackers[1]!.clientId)).toBeNull()
})

test("a snapshot stream waits for the reader's buffer, whatever it acknowledges, and resumes when it reads", async () => {
  const highWaterMark = 128 * KiB
  const w = hubWorld({ highWaterMark, hardLimit: 1024 * KiB, snapshots: { minLogBytes: Infinity } })
  // About 3 MB of state.
  await write(w, "big", 30, 2, (i) => ({ name: "add", args: { id: `i${i}`, title: "t".repeat(100_000) } }))
  const doc = await w.hub.doc("big", Todo)
  expect(doc.headSeq).toBe(30)
  const taking = doc.snapshotNow()
  await w.run(200)
  const meta = await taking
  expect(meta.size).toBeGreaterThan(2_900_000)
  const reader = await w.peer()
  w.subscribe(reader, "big", 30)
  await w.run(10)
  reader.stall()
  reader.send({ type: "fetch-state", docId: "big" })
  // It claims to have read everything it was sent and more, and reads nothing.
  for (let claimed = 256 * KiB; claimed <= 4096 * KiB; claimed += 256 * KiB) {
    await w.run(20)
    reader.send({ type: "snapshot-ack", docId: "big", snapshotId: 30, received: claimed })
  }
  await w.run(500)
  // Paused at the mark (plus one wire chunk), never the whole snapshot; or dropped at the hard limit.
  expect(reader.maxBuffered).toBeLessThan(highWaterMark + 80 * KiB)
  expect(reader.closed).toBeUndefined()
  // When it reads again, the stream goes on to its end and the reader is live.
  reader.read()
  for (let i = 0; i < 40 && reader.of("synced", "big").length < 2; i++) {
    await w.run(100)
    const chunks = reader.of("snapshot-chunk", "big")
    const last = chunks[chunks.length - 1]
    if (last !== undefined) reader.send({ type: "snapshot-ack", docId: "big", snapshotId: 30, received: last.offset + last.bytes.length })
  }
  expect(reader.of("snapshot-end", "big")).toHaveLength(1)
  expect(reader.of("synced", "big").map((m) => m.seq)).toEqual([30, 30])
})

test("a catch-up page of big entries is sent message by message within the limits", async () => {
  const highWaterMark = 256 * KiB
  const w = hubWorld({ highWaterMark, hardLimit: 1024 * KiB, snapshots: { minLogBytes: Infinity } })
  // 100 entries of 50 KB: one catch-up page of about 5 MB.
  await write(w, "log", 100, 1, () => ({ name: "note", args: { text: "n".repeat(50_000) } }))
  await w.run(50)
  const reader = await w.peer()
  reader.stall()
  w.subscribe(reader, "log")
  await w.run(500)
  // Paused after the message that crossed the mark (entries messages are cut at 512 KiB).
  expect(reader.maxBuffered).toBeLessThan(highWaterMark + 600 * KiB)
  expect(reader.closed).toBeUndefined()
  reader.read()
  await w.run(2000)
  const seqs = reader.of("entries", "log").flatMap((m) => m.entries.map((e) => e.seq))
  expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
  expect(reader.of("synced", "log").map((m) => m.seq)).toEqual([100])
})

test("a reader's subscribe to a document that does not exist writes nothing, and gets the initial state from memory", async () => {
  const w = hubWorld()
  const reader = await w.peer()
  // After the hello: the format marker and the reader's identity are the hello's.
  const before = w.storage.size
  // "Ahead of the authority" (it followed a lost incarnation): it gets the state at seq 0.
  for (let i = 0; i < 20; i++) {
    w.subscribe(reader, `ghost-${i}`, 1 + i)
    await w.run(5)
  }
  // Asking for the whole state of an empty document is a read too.
  w.subscribe(reader, "empty")
  await w.run(5)
  reader.send({ type: "fetch-state", docId: "empty" })
  await w.run(50)
  expect(w.storage.size).toBe(before)
  for (const docId of ["ghost-0", "ghost-19", "empty"]) {
    const begin = reader.of("snapshot-begin", docId)
    expect(begin.map((b) => b.seq)).toEqual([0])
    const bytes = Buffer.concat(reader.of("snapshot-chunk", docId).map((c) => c.bytes))
    expect(bytes.length).toBe(begin[0]!.size)
    expect(decodeCanonical(bytes)).toEqual({ items: {}, count: 0, log: [] })
    expect(reader.of("synced", docId).map((m) => m.seq)).toContain(0)
  }
})

test("a reader asking for its state again and again gets the head, from snapshots taken at most once a second", async () => {
  const w = hubWorld()
  const writer = await w.peer()
  w.subscribe(writer, "asked")
  const reader = await w.peer()
  w.subscribe(reader, "asked")
  await w.run(10)
  const doc = await w.hub.doc("asked", Todo)
  let next = 1
  const write = () => writer.send({ type: "submit", docId: "asked", ackedClientSeq: 0, commands: [{ clientSeq: next, name: "add", args: { id: `i${next++}`, title: "t" } }] })
  const start = w.rt.now()
  for (let ask = 0; ask < 30; ask++) {
    write()
    await w.run(10)
    const head = doc.headSeq
    const before = reader.of("synced", "asked").length
    reader.send({ type: "fetch-state", docId: "asked" })
    // The writer goes on meanwhile; the reader acknowledges what it reads.
    for (let i = 0; i < 200 && reader.of("synced", "asked").length === before; i++) {
      if (i % 5 === 0) write()
      await w.run(10)
      const chunks = reader.of("snapshot-chunk", "asked")
      const last = chunks[chunks.length - 1]
      if (last !== undefined) reader.send({ type: "snapshot-ack", docId: "asked", snapshotId: last.snapshotId, received: last.offset + last.bytes.length })
    }
    expect(reader.of("synced", "asked").length).toBeGreaterThan(before)
    // Answered with a snapshot at the head as it was when the answer was taken, never older than the ask.
    const begin = reader.of("snapshot-begin", "asked").at(-1)!
    expect(begin.seq).toBeGreaterThanOrEqual(head)
  }
  const seconds = (w.rt.now() - start) / 1000
  const snapshots = new Set(reader.of("snapshot-begin", "asked").map((b) => b.snapshotId)).size
  expect(reader.of("snapshot-begin", "asked")).toHaveLength(30)
  // Asked back to back, they were taken at most one a second (and the first), however fast it asked.
  expect(snapshots).toBeLessThanOrEqual(Math.floor(seconds) + 1)
})

test("a reader at an older version asking for its state again and again gets the whole log converted at most once a second", async () => {
  const w = hubWorld({ machines: [TodoV2], snapshots: { minLogBytes: Infinity } })
  const sub = (p: Awaited<ReturnType<typeof w.peer>>, m: typeof TodoV1 | typeof TodoV2) =>
    p.send({ type: "subscribe", docId: "d", machine: m.name, version: m.version, fingerprint: m.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  const writer = await w.peer()
  sub(writer, TodoV2)
  await w.run(10)
  const N = 2000
  let seq = 1
  for (let b = 0; b < N / 500; b++) {
    writer.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: Array.from({ length: 500 }, () => ({ clientSeq: seq, name: "add", args: { id: `i${seq++}`, title: "t", priority: 0 } })) })
    await w.run(50)
  }
  const doc = await w.hub.doc("d", TodoV2)
  expect(doc.headSeq).toBe(N)
  const old = await w.peer()
  sub(old, TodoV1)
  await w.run(200)
  expect(old.of("synced", "d").length).toBe(1)
  const entriesBefore = old.of("entries", "d").reduce((n, m) => n + m.entries.length, 0)
  expect(entriesBefore).toBe(N)
  // 40 fetch-state messages over ~2 s of virtual time (well under the message rate limit).
  const start = w.rt.now()
  for (let i = 0; i < 40; i++) {
    old.send({ type: "fetch-state", docId: "d" })
    await w.run(50)
    const chunks = old.of("snapshot-chunk", "d")
    const last = chunks.at(-1)
    if (last !== undefined) old.send({ type: "snapshot-ack", docId: "d", snapshotId: last.snapshotId, received: last.offset + last.bytes.length })
  }
  await w.run(500)
  const seconds = (w.rt.now() - start) / 1000
  const resent = old.of("entries", "d").reduce((n, m) => n + m.entries.length, 0) - entriesBefore
  // Safe: like asked-for snapshots, whole-history answers at most about once a second.
  expect(resent).toBeLessThanOrEqual(N * (Math.floor(seconds) + 1))
})
