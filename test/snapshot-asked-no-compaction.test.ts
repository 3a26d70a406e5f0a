/**
 * A state a reader asks for (`fetch-state`, or a subscribe from past the head) is a snapshot,
 * stored, but it does not compact the log behind it: only the snapshot policy (the log grown
 * past its threshold) and an explicit compaction (`snapshotNow`) do. Before, every asked-for
 * snapshot compacted as a policy one, so a reader asking again and again (each ask paced, at
 * least 1 s apart) brought forward the moment an app at an older version of the machine, or
 * a replica a little behind, had to start from a snapshot: one with no log to be served from
 * is told `update-required`.
 *
 * Raw peers on virtual time (support/hub-wire.ts).
 */
import { hubWorld, type WirePeer } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"

/** A policy that would not snapshot these few entries, and keeps no tail behind a snapshot. */
const world = () => hubWorld({ snapshots: { minLogBytes: 1 << 20, tailBytes: 0 } })

const write = (p: WirePeer, n: number): void =>
  p.send({ type: "submit", docId: "d", ackedClientSeq: n - 1, commands: [{ clientSeq: n, name: "add", args: { id: `i${n}`, title: "t" } }] })

test("asked-for states are snapshots that leave the log as it was; the policy's and an explicit one compact", async () => {
  const w = world()
  const writer = await w.peer()
  const reader = await w.peer()
  w.subscribe(writer, "d")
  w.subscribe(reader, "d")
  await w.run(50)
  for (let n = 1; n <= 10; n++) {
    write(writer, n)
    await w.run(20)
    reader.send({ type: "fetch-state", docId: "d" })
    await w.run(1_500)
    for (const b of reader.of("snapshot-begin")) reader.send({ type: "snapshot-ack", docId: "d", snapshotId: b.snapshotId, received: b.size })
  }
  await w.run(2_000)
  const doc = await w.hub.doc("d", Todo)
  // Asked for and sent: stored snapshots, the newest at the head.
  expect(reader.of("snapshot-begin").length).toBeGreaterThanOrEqual(5)
  expect(doc.latestSnapshot?.seq).toBe(10)
  // The log is whole: a replica at seq 1 still catches up from entries.
  expect(doc.compactedThrough).toBe(0)
  const late = await w.peer()
  w.subscribe(late, "d", 1)
  await w.run(500)
  expect(late.of("snapshot-begin")).toEqual([])
  expect(late.of("entries").flatMap((m) => m.entries.map((e) => e.seq))).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10])
  // An explicit compaction still compacts, behind the snapshot already at the head (the
  // entry at the snapshot's seq is the least tail a horizon keeps).
  await doc.snapshotNow()
  await w.run(500)
  expect(doc.compactedThrough).toBe(9)
  await w.hub.close()
}, 60_000)

test("a reader asking for the state every second does not put the policy's compaction off: the log is compacted as often as without it", async () => {
  // A policy snapshot every ~2 KiB of log, keeping no tail.
  const run = async (ask: boolean): Promise<number> => {
    const w = hubWorld({ snapshots: { minLogBytes: 2048, logRatio: 0, tailBytes: 0 } })
    const writer = await w.peer()
    const reader = await w.peer()
    w.subscribe(writer, "d")
    w.subscribe(reader, "d")
    await w.run(50)
    for (let n = 1; n <= 120; n++) {
      write(writer, n)
      await w.run(100)
      if (ask && n % 10 === 0) reader.send({ type: "fetch-state", docId: "d" })
      for (const b of reader.of("snapshot-begin")) reader.send({ type: "snapshot-ack", docId: "d", snapshotId: b.snapshotId, received: b.size })
    }
    await w.run(2_000)
    const horizon = (await w.hub.doc("d", Todo)).compactedThrough
    await w.hub.close()
    return horizon
  }
  const without = await run(false)
  const withReader = await run(true)
  expect(without).toBeGreaterThan(60)
  // Compacted as far, give or take the last policy snapshot's moment.
  expect(withReader).toBeGreaterThanOrEqual(without - 20)
}, 60_000)
