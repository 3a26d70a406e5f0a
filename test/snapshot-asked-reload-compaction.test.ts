/**
 * The snapshot policy counts the log since the last snapshot that compacted
 * (snapshots.ts `uncompacted`, 7683279), so a snapshot a reader asked for (afcc52f: stored, compacts
 * nothing) does not put the policy's next compaction off. That count must survive the document
 * being loaded again (unloaded when idle, or a hub restart): counted at load from the newest
 * snapshot, whatever it was, a reader asking for the state once per visit reset it at every load,
 * and a document written in short visits was never compacted again (its log grew without bound).
 *
 * Raw peers on virtual time (support/hub-wire.ts).
 */
import { hubWorld, type WirePeer } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"

const write = (p: WirePeer, n: number, id: string): void =>
  p.send({ type: "submit", docId: "d", ackedClientSeq: n - 1, commands: [{ clientSeq: n, name: "add", args: { id, title: "t" } }] })

test("a reader asking for the state once per visit does not keep a document unloaded between visits from being compacted", async () => {
  // A policy snapshot every ~2 KiB of log, keeping no tail; an idle document is unloaded at once.
  const run = async (ask: boolean): Promise<{ horizon: number; loads: number }> => {
    const w = hubWorld({ snapshots: { minLogBytes: 2048, logRatio: 0, tailBytes: 0 }, idleDocuments: { count: 0 } })
    const instances = new Set<unknown>()
    for (let visit = 0; visit < 12; visit++) {
      const writer = await w.peer()
      w.subscribe(writer, "d")
      await w.run(50)
      instances.add(await w.hub.doc("d", Todo))
      // About 1 KiB of log a visit: under the policy's threshold.
      for (let n = 1; n <= 10; n++) {
        write(writer, n, `v${visit}-${n}`)
        await w.run(20)
      }
      if (ask) {
        const reader = await w.peer()
        w.subscribe(reader, "d")
        await w.run(50)
        reader.send({ type: "fetch-state", docId: "d" })
        await w.run(500)
        for (const b of reader.of("snapshot-begin")) reader.send({ type: "snapshot-ack", docId: "d", snapshotId: b.snapshotId, received: b.size })
        await w.run(500)
        reader.send({ type: "unsubscribe", docId: "d" })
      }
      writer.send({ type: "unsubscribe", docId: "d" })
      // Past the asked state's pacing: nobody follows it, so it is unloaded.
      await w.run(3_000)
      expect(w.hub.stats().documents).toBe(0)
    }
    const horizon = (await w.hub.doc("d", Todo)).compactedThrough
    await w.hub.close()
    return { horizon, loads: instances.size }
  }
  const without = await run(false)
  const withReader = await run(true)
  expect(without.loads).toBe(12)
  expect(withReader.loads).toBe(12)
  expect(without.horizon).toBeGreaterThan(60)
  // Compacted as far, give or take the last policy snapshot's moment.
  expect(withReader.horizon).toBeGreaterThanOrEqual(without.horizon - 20)
}, 60_000)
