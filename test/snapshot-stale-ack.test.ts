/**
 * A snapshot stream's `snapshotId` is the snapshot's seq, so two streams of one snapshot on
 * one connection are told apart by nothing. A replica's subscribe (`#follow` after a gap, or
 * a resync) makes the hub stop the stream in progress and start the same snapshot again from
 * 0; acknowledgements the replica sent after that subscribe, for the bytes of the earlier
 * stream it went on reading, reach the new stream. The sender took an acknowledgement ahead
 * of its offset for a resuming replica and skipped to it, but the replica had installed the
 * earlier stream and took the new one from 0: its stream ended at the window's bytes ('it
 * ended at 1024 of 234234 bytes', simulator seed 171) or skipped ('a chunk at 131072 skips
 * from 98304', seed 175), was discarded and asked for again. A resume point is only what a
 * replica says before it subscribes (the stream starts there); an acknowledgement is credit.
 *
 * Raw peers on virtual time (support/hub-wire.ts); the replica's side is its SnapshotReceiver.
 */
import { hubWorld } from "./support/hub-wire.js"
import { SnapshotReceiver } from "../core/replica/snapshot-receiver.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { SnapshotSender, WIRE_CHUNK } from "../core/authority/snapshot-sender.js"

const KiB = 1 << 10
const DOC = "big"
/** What a replica acknowledges by (doc.ts SNAPSHOT_ACK_EVERY). */
const ACK_EVERY = 128 * KiB

test("an acknowledgement of an earlier stream of the same snapshot does not move a new stream past what the replica has", async () => {
  const w = hubWorld({
    snapshots: { minLogBytes: 16 * KiB, logRatio: 1, tailBytes: 1 * KiB, chunkBytes: 16 * KiB },
    snapshotLagEntries: 1,
    snapshotWindowBytes: 128 * KiB,
  })
  // About 200 KiB of state, snapshotted (and compacted) behind a small tail.
  const writer = await w.peer()
  w.subscribe(writer, DOC)
  await w.run(20)
  for (let i = 1; i <= 50; i++) {
    writer.send({ type: "submit", docId: DOC, ackedClientSeq: i - 1, commands: [{ clientSeq: i, name: "add", args: { id: `i${i}`, title: `${i}-`.repeat(2000).slice(0, 4000) } }] })
    await w.run(100)
  }
  await w.run(2000)

  const r = await w.peer()
  let seen = 0
  let receiver: SnapshotReceiver | undefined
  const acks: number[] = []
  const installed: number[] = []
  const bad: string[] = []
  /** The replica reads what came (doc.ts: snapshot-begin, -chunk, -end); `hold` keeps its acks back. */
  const read = (until?: (m: ServerMessage) => boolean): void => {
    while (seen < r.received.length) {
      const m = r.received[seen]!
      if (until?.(m) === true) return
      seen++
      if (m.type === "snapshot-begin") {
        if (receiver !== undefined && receiver.same(m)) {
          if (receiver.received > 0) r.send({ type: "snapshot-ack", docId: DOC, snapshotId: m.snapshotId, received: receiver.received })
        } else receiver = new SnapshotReceiver(m, ACK_EVERY)
      } else if (m.type === "snapshot-chunk" && receiver?.id === m.snapshotId) {
        const out = receiver.chunk(m)
        if (typeof out === "string") {
          bad.push(out)
          receiver = undefined
        } else if (out !== undefined) {
          acks.push(out)
          r.send({ type: "snapshot-ack", docId: DOC, snapshotId: m.snapshotId, received: out })
        }
      } else if (m.type === "snapshot-end" && receiver?.id === m.snapshotId) {
        const done = receiver.finish()
        receiver = undefined
        if (typeof done === "string") bad.push(done)
        else installed.push(done.length)
      }
    }
  }
  w.subscribe(r, DOC)
  await w.run(50)
  const first = r.of("snapshot-begin", DOC)
  expect(first.length).toBe(1)
  const size = first[0]!.size
  // Over the window (the stream waits for the replica's acknowledgements), within two.
  expect(size).toBeGreaterThan(128 * KiB)
  expect(size).toBeLessThan(256 * KiB)
  // The replica takes the first window and acknowledges it: the hub sends the rest and ends.
  read()
  expect(acks).toEqual([ACK_EVERY])
  await w.run(50)
  expect(r.of("snapshot-end", DOC).length).toBe(1)
  // Before it reads the rest, the replica follows again (entries it missed): the hub starts
  // the snapshot over on this connection.
  w.subscribe(r, DOC)
  await w.run(50)
  expect(r.of("snapshot-begin", DOC).length).toBe(2)
  // The replica now reads the first stream to its end (acknowledging all of it, after its
  // subscribe) and installs it; the hub reads that acknowledgement while its new stream runs.
  read((m) => m.type === "snapshot-begin" && m !== first[0])
  expect(acks).toEqual([ACK_EVERY, size])
  expect(installed).toEqual([size])
  await w.run(50)
  // The new stream is taken from 0 by a new receiver: every byte must come.
  for (let i = 0; i < 20 && r.of("snapshot-end", DOC).length < 2; i++) {
    read()
    await w.run(50)
  }
  read()
  expect(bad).toEqual([])
  expect(installed).toEqual([size, size])
})

test("a sender skips nothing on an acknowledgement past what it sent (another stream's): it is credit at most", async () => {
  const bytes = new Uint8Array(3 * WIRE_CHUNK).map((_, i) => i % 251)
  const meta = { seq: 7, hash: "h", size: bytes.length, chunks: 1, lastTime: 0 }
  const sent: Array<{ offset: number; length: number }> = []
  let ended = false
  let error: unknown
  const conn = {
    send: (m: ServerMessage) => {
      if (m.type === "snapshot-chunk") sent.push({ offset: m.offset, length: m.bytes.length })
      if (m.type === "snapshot-end") ended = true
    },
    close() {},
    bufferedAmount: 0,
  }
  const tick = () => new Promise((resolve) => setImmediate(resolve))
  const sender = new SnapshotSender("d", meta, async () => bytes, conn as never, WIRE_CHUNK, () => true, () => {}, () => {}, (e) => { error = e })
  sender.start(0)
  await tick()
  // One window sent; then an acknowledgement of all of it (an earlier stream of snapshot 7).
  expect(sent).toEqual([{ offset: 0, length: WIRE_CHUNK }])
  sender.ack(7, bytes.length)
  await tick()
  // The replica acknowledges what it takes of this stream, until it ends.
  for (let i = 0; i < 10 && !ended; i++) {
    const last = sent.at(-1)!
    sender.ack(7, last.offset + last.length)
    await tick()
  }
  expect(error).toBeUndefined()
  expect(ended).toBe(true)
  let next = 0
  for (const c of sent) {
    expect(c.offset).toBe(next)
    next += c.length
  }
  expect(next).toBe(bytes.length)
})
