/**
 * A compaction that fails (the storage refuses the deletes) is reported as what it is, and
 * takes nothing else down: the snapshot behind which it was to compact is stored and served,
 * and the next snapshot that compacts does it. It used to fail inside the snapshot's own
 * handler: reported as the snapshot failing, its size measure told it failed after it was
 * done, and a snapshot begun meanwhile had its waiters (replicas asking for their state)
 * rejected, each told catch-up-failed.
 */
import { MemoryStorage } from "../adapters/memory/index.js"
import type { KVStore } from "../core/ports/storage.js"
import type { HubEvent } from "../core/authority/hub.js"
import { hubWorld, type WirePeer } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"

/** A storage whose batches holding a delete fail while `failing`. */
const deletesFailing = () => {
  const inner = new MemoryStorage()
  const state = { failing: false }
  const storage: KVStore = {
    get: (k) => inner.get(k),
    range: (o) => inner.range(o),
    close: () => inner.close(),
    batch: (ops, o) => (state.failing && ops.some((op) => op.type === "del") ? Promise.reject(new Error("disk says no")) : inner.batch(ops, o)),
  }
  return { storage, state }
}

const write = (p: WirePeer, n: number): void =>
  p.send({ type: "submit", docId: "d", ackedClientSeq: n - 1, commands: [{ clientSeq: n, name: "add", args: { id: `i${n}`, title: "t" } }] })

test("a failed compaction is reported as one; the snapshot stands and the next compaction does it", async () => {
  const { storage, state } = deletesFailing()
  const events: HubEvent[] = []
  const w = hubWorld({ storage, snapshots: { minLogBytes: 1024, logRatio: 0, tailBytes: 0 }, onEvent: (e) => void events.push(e) })
  const writer = await w.peer()
  w.subscribe(writer, "d")
  await w.run(50)
  state.failing = true
  let n = 0
  const doc = await w.hub.doc("d", Todo)
  while (doc.latestSnapshot === undefined && n < 200) {
    write(writer, ++n)
    await w.run(50)
  }
  await w.run(500)
  const reports = events.flatMap((e) => (e.type === "doc-report" ? [e] : []))
  expect(doc.latestSnapshot).toBeDefined()
  expect(reports.map((r) => r.message)).toEqual([expect.stringMatching(/^Compacting "d" behind its snapshot at seq \d+ failed \(the next snapshot that compacts does it\): disk says no/)])
  // A replica asking for the state now is served the stored snapshot.
  const reader = await w.peer()
  w.subscribe(reader, "d")
  reader.send({ type: "fetch-state", docId: "d" })
  await w.run(1_500)
  expect(reader.of("snapshot-begin").length).toBeGreaterThan(0)
  expect(reader.of("error")).toEqual([])
  // The storage works again: the next policy snapshot compacts.
  state.failing = false
  const before = doc.latestSnapshot!.seq
  for (let i = 0; i < 200 && doc.compactedThrough <= before; i++) {
    write(writer, ++n)
    await w.run(50)
  }
  expect(doc.compactedThrough).toBeGreaterThan(before)
  await w.hub.close()
}, 60_000)
