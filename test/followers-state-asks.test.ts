/**
 * A state asked for (`fetch-state`: a snapshot of the whole document at the head) is paid by
 * the client asking, from a bucket of its own weighed by the state's size (at least 256 KiB;
 * `limits.stateBytesPerSecond`, `stateBurstBytes`), on top of each document's pacing (at least
 * 1 s apart, followers.ts). Before, only the document paced them: one client following N big
 * documents, writing a little to each and asking for each one's state, cost the hub N times a
 * document's share (review r15, finding 4: four 20 MB boards, 172 MiB of snapshots encoded and
 * stored in 13 s, 37% of a core). An ask past the budget waits, and is answered once the
 * client's bucket allows (never refused); other clients' asks do not wait for it.
 *
 * Raw peers on virtual time (support/hub-wire.ts).
 */
import { hubWorld, type WirePeer } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"

const KiB = 1 << 10

const world = () => hubWorld({ limits: { stateBytesPerSecond: 512 * KiB, stateBurstBytes: 512 * KiB }, snapshots: { minLogBytes: Infinity } })

/** Tiny writes to `docs` on `p`'s own clientSeqs. */
const writer = (p: WirePeer) => {
  const seqs = new Map<string, number>()
  return (docId: string) => {
    const n = (seqs.get(docId) ?? 0) + 1
    seqs.set(docId, n)
    p.send({ type: "submit", docId, ackedClientSeq: n - 1, commands: [{ clientSeq: n, name: "add", args: { id: `i${n}`, title: "t" } }] })
  }
}

/** Acknowledges every snapshot stream whole as soon as it begins (nothing need be sent). */
const ackAll = (p: WirePeer, from: number): number => {
  const begins = p.received.slice(from).filter((m) => m.type === "snapshot-begin")
  for (const b of begins) if (b.type === "snapshot-begin") p.send({ type: "snapshot-ack", docId: b.docId, snapshotId: b.snapshotId, received: b.size })
  return p.received.length
}

test("one client asking for the state of many documents is paced by its own budget, not once per document, and every ask is answered", async () => {
  const w = world()
  const asker = await w.peer()
  const docs = Array.from({ length: 20 }, (_, i) => `doc${i}`)
  for (const d of docs) w.subscribe(asker, d)
  await w.run(50)
  const write = writer(asker)
  let seen = ackAll(asker, 0)
  const heads = new Map<string, number>()
  // 4 s: every 250 ms, a tiny write to each document and an ask for its state.
  const start = w.rt.now()
  for (let round = 0; round < 16; round++) {
    for (const d of docs) {
      write(d)
      asker.send({ type: "fetch-state", docId: d })
    }
    await w.run(250)
    seen = ackAll(asker, seen)
  }
  const seconds = (w.rt.now() - start) / 1000
  const made = asker.of("snapshot-begin").length
  // Each is weighed at least 256 KiB: 2 of the burst, then 2 a second (and the one in flight).
  // Before, each document made one a second: some 80.
  expect(made).toBeLessThanOrEqual(2 + Math.ceil(2 * seconds) + 1)
  for (const d of docs) heads.set(d, (await w.hub.doc(d, Todo)).headSeq)
  // Delayed, not refused: once the asks stop, every document's is answered with its head.
  const until = w.rt.now() + 15_000
  while (w.rt.now() < until && !docs.every((d) => asker.of("snapshot-begin", d).some((b) => b.seq >= heads.get(d)!))) {
    await w.run(250)
    seen = ackAll(asker, seen)
  }
  for (const d of docs) expect(asker.of("snapshot-begin", d).some((b) => b.seq >= heads.get(d)!)).toBe(true)
})

// Not a regression test (it held before): the fix must not make one client's asks wait for another's.
test("another client's ask does not wait for a client in debt", async () => {
  const w = world()
  const asker = await w.peer()
  const honest = await w.peer()
  const docs = Array.from({ length: 10 }, (_, i) => `doc${i}`)
  for (const d of docs) w.subscribe(asker, d)
  w.subscribe(honest, "own")
  await w.run(50)
  const write = writer(asker)
  const writeOwn = writer(honest)
  let seen = ackAll(asker, 0)
  for (let round = 0; round < 4; round++) {
    for (const d of docs) {
      write(d)
      asker.send({ type: "fetch-state", docId: d })
    }
    await w.run(100)
    seen = ackAll(asker, seen)
  }
  writeOwn("own")
  await w.run(20)
  const at = w.rt.now()
  honest.send({ type: "fetch-state", docId: "own" })
  await w.run(100)
  const begin = honest.of("snapshot-begin", "own").at(-1)
  expect(begin).toBeDefined()
  expect(w.rt.now() - at).toBeLessThan(1_000)
})

test("a follower whose asked-for state waits its turn keeps getting live entries meanwhile, then the state, then every later entry once", async () => {
  // Asked-for states are at least 1 s apart per document: b asks 100 ms after a, and waits
  // about 900 ms. It used to be held off live entries from its ask (the hub's followers.ts
  // parked it at once), so a writer on b's connection saw no confirmation for that long.
  const w = hubWorld()
  const [writerPeer, a, b] = [await w.peer(), await w.peer(), await w.peer()]
  for (const p of [writerPeer, a, b]) w.subscribe(p, "d")
  await w.run(50)
  const write = writer(writerPeer)
  for (let i = 0; i < 5; i++) write("d")
  await w.run(100)
  const from = b.received.length
  // Every 50 ms a write; a asks at 0, b at 100 ms.
  const arrivals: number[] = []
  let seen = from
  for (let t = 0; t < 2000; t += 50) {
    if (t === 0) a.send({ type: "fetch-state", docId: "d" })
    if (t === 100) b.send({ type: "fetch-state", docId: "d" })
    write("d")
    await w.run(50)
    ackAll(a, 0)
    ackAll(b, seen)
    if (b.received.slice(seen).some((m) => m.type === "entries")) arrivals.push(w.rt.now())
    seen = b.received.length
  }
  await w.run(500)
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!)
  expect(Math.max(...gaps)).toBeLessThanOrEqual(100)
  // b got its state, and from there every entry once, in order, up to the head.
  const after = b.received.slice(from)
  const begin = after.findIndex((m) => m.type === "snapshot-begin")
  expect(begin).toBeGreaterThan(0)
  const snapshotSeq = (after[begin] as { seq: number }).seq
  const live = after.slice(0, begin).flatMap((m) => (m.type === "entries" ? m.entries.map((e) => e.seq) : []))
  const later = after.slice(begin).flatMap((m) => (m.type === "entries" ? m.entries.map((e) => e.seq) : []))
  expect(Math.max(...live)).toBeLessThanOrEqual(snapshotSeq)
  const head = (await w.hub.doc("d", Todo)).headSeq
  expect(later).toEqual(Array.from({ length: head - snapshotSeq }, (_, i) => snapshotSeq + 1 + i))
})
