/**
 * Every snapshot stream the hub starts for a client is paid from the client's state budget
 * (`limits.stateBytesPerSecond`, 4 MiB a second after a 16 MiB burst), by the snapshot's size,
 * not only the states it asks the hub to make: a stream of a stored snapshot costs the hub
 * reading and sending it whatever made it. Before, only a snapshot made for a `fetch-state`
 * was paid: a fetch-state the stored snapshot already answered, and a subscribe behind the
 * compaction horizon, started a fresh stream each time (each with a fresh 1 MiB window, no
 * acknowledgement needed), so one client re-subscribing from seq 0 or asking in a loop got
 * 211-282 MiB of state a second, 50-70 times the rate (review s34, f1). In debt, the stream
 * waits (never refused); a client opening a large document once goes through at once.
 *
 * Raw peers on virtual time (support/hub-wire.ts), the default limits.
 */
import { hubWorld, type WirePeer } from "./support/hub-wire.js"
import { running } from "./support/virtual-time.js"
import { Todo } from "./support/machines.js"

const MiB = 1 << 20
const RATE = 4 * MiB
const BURST = 16 * MiB

/** Acknowledges every snapshot stream read since `from` whole (as a quick replica would). */
const ackAll = (p: WirePeer, from: number): number => {
  for (const m of p.received.slice(from)) {
    if (m.type === "snapshot-begin") p.send({ type: "snapshot-ack", docId: m.docId, snapshotId: m.snapshotId, received: m.size })
  }
  return p.received.length
}

const chunkBytes = (p: WirePeer, docId: string): number => p.of("snapshot-chunk", docId).reduce((n, c) => n + c.bytes.length, 0)

/** A hub holding "big": about 1 MB of state, compacted at its head (nothing of its log left to catch up from). */
const bigWorld = async () => {
  const w = hubWorld()
  const writer = await w.peer()
  w.subscribe(writer, "big")
  await w.run(50)
  const title = "x".repeat(480)
  let n = 0
  for (let b = 0; b < 2; b++) {
    const commands = Array.from({ length: 1000 }, () => ({ clientSeq: ++n, name: "add", args: { id: `i${n}`, title } }))
    writer.send({ type: "submit", docId: "big", ackedClientSeq: 0, commands })
    await w.run(500)
  }
  const doc = await running(w.rt, w.hub.doc("big", Todo))
  expect(doc.headSeq).toBe(2000)
  const meta = await running(w.rt, doc.snapshotNow())
  expect(meta.seq).toBe(2000)
  expect(meta.size).toBeGreaterThan(900_000)
  return { ...w, size: meta.size }
}

test("a client re-subscribing from seq 0 to a compacted document in a loop is sent at most its state budget of streams", async () => {
  const w = await bigWorld()
  const attacker = await w.peer()
  let seen = 0
  const start = w.rt.now()
  // 3 s: every 50 ms, ten subscribes from seq 0 (200 a second, within the message rate).
  for (let t = 0; t < 3000; t += 50) {
    for (let i = 0; i < 10; i++) w.subscribe(attacker, "big", 0)
    await w.run(50)
    seen = ackAll(attacker, seen)
  }
  const seconds = (w.rt.now() - start) / 1000
  const sent = chunkBytes(attacker, "big")
  // The burst, the rate, and the one stream that may start just before the bucket goes into
  // debt. Before: 600 streams, some 600 MB.
  expect(sent).toBeLessThanOrEqual(BURST + RATE * seconds + w.size)
  expect(attacker.of("snapshot-begin", "big").length).toBeLessThanOrEqual(Math.ceil((BURST + RATE * seconds) / w.size) + 1)
  // Delayed, not refused: its last subscribe is answered once the budget allows.
  const last = attacker.received.length
  for (let t = 0; t < 10_000 && !attacker.received.slice(last).some((m) => m.type === "synced"); t += 100) {
    await w.run(100)
    ackAll(attacker, last)
  }
  expect(attacker.received.slice(last).some((m) => m.type === "synced")).toBe(true)
  expect(attacker.closed).toBeUndefined()
})

test("a client asking for a state its stored snapshot already holds, in a loop, is sent at most its state budget of streams", async () => {
  const w = await bigWorld()
  const attacker = await w.peer()
  const start = w.rt.now()
  w.subscribe(attacker, "big", 0)
  await w.run(200)
  let seen = ackAll(attacker, 0)
  for (let t = 0; t < 3000; t += 50) {
    for (let i = 0; i < 10; i++) attacker.send({ type: "fetch-state", docId: "big" })
    await w.run(50)
    seen = ackAll(attacker, seen)
  }
  const seconds = (w.rt.now() - start) / 1000
  // The subscribe's stream and the asks' alike. Before: some 600 streams.
  expect(chunkBytes(attacker, "big")).toBeLessThanOrEqual(BURST + RATE * seconds + w.size)
  expect(attacker.closed).toBeUndefined()
})

// Not a regression test (it held before): what honest clients must keep.
test("a client opening a large document once is streamed it at once, and is not held by another client's debt", async () => {
  const w = await bigWorld()
  const attacker = await w.peer()
  for (let t = 0; t < 1000; t += 50) {
    for (let i = 0; i < 10; i++) w.subscribe(attacker, "big", 0)
    await w.run(50)
  }
  const honest = await w.peer()
  const at = w.rt.now()
  w.subscribe(honest, "big", 0)
  await w.run(10)
  expect(honest.of("snapshot-begin", "big")).toHaveLength(1)
  for (let t = 0; t < 1000 && honest.of("synced", "big").length === 0; t += 10) await w.run(10)
  expect(honest.of("synced", "big")[0]?.seq).toBe(2000)
  expect(chunkBytes(honest, "big")).toBe(w.size)
  expect(w.rt.now() - at).toBeLessThan(200)
})
