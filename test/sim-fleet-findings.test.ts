/**
 * Engine bugs the simulator's mixed fleet (test/sim/versioned.ts) found, each reduced to a
 * deterministic test. Both fail on the engine as it is; the fix of each is in its comment.
 *
 * 1. A hub whose machine has a version history cannot load a compacted document:
 *    `scanMarkers` (core/authority/doc-authority.ts) reads the log from seq 0 to find the
 *    `$migrate` markers, and after compaction entry 1 is gone ("The log of document ... has a
 *    hole: entry 1 is missing"). Every document of an evolved machine whose log was compacted
 *    is lost to the hub until then. Fix: scan from the compaction horizon (markers before it
 *    are covered by the snapshot the load starts from; `DocAuthority.load` already reads
 *    `horizon` before the scan: pass it and start `at` there). Found by every seed of
 *    `npm run sim -- --seeds 6 --replicas 5`.
 * 2. Compat mode (an app newer than the hub): a command with no downcast waits, "with the
 *    commands after it" (doc.ts `sendDowncast`), but a command submitted after it is sent
 *    anyway when its outbox write completes (`flushOutbox` -> `sendSubmit` -> `sendDowncast`
 *    with just the new command), and the hub refuses it as a clientSeq gap. Nothing is lost
 *    (the outbox is resent in order at the next connection), but each such submit costs an
 *    error frame and a resubscribe. Fix: `sendDowncast` returns at once while
 *    `this.blockedTooNew` is set (it is cleared on each new connection). Found by `npm run
 *    sim -- --seed 1 --replicas 3 --faults 0 --hostile 0 --snapshots 0 --docs 0 --big-kib 0
 *    --drifting 0`.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { AuthorityStore } from "../core/store/authority-store.js"
import { TodoV1, TodoV2 } from "./support/versioned-machines.js"

const DOC = "list"

const settle = async (rt: VirtualRuntime, ms = 3000) => {
  for (let t = 0; t < ms; t += 50) await rt.run({ forMs: 50 })
}

test("a hub with a versioned machine loads a document whose log was compacted", async () => {
  const rt = new VirtualRuntime(17)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hubStore = new MemoryStorage()
  // Small: snapshots and compaction after a few dozen commands.
  const policy = { minLogBytes: 2 << 10, logRatio: 0.5, tailBytes: 256, chunkBytes: 4 << 10 }
  let hub = new Hub({ machines: [TodoV2], storage: hubStore, runtime: rt, snapshots: policy })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt, clientId: "a", storage: new MemoryStorage() })
  const doc = await client.open(TodoV2, DOC)
  for (let i = 0; i < 120; i++) {
    doc.submit("add", { id: `i${i}`, title: "x".repeat(40), priority: i % 3 })
    if (i % 20 === 19) await settle(rt, 500)
  }
  await settle(rt)
  const head = (await hub.doc(DOC, TodoV2)).headSeq
  expect(head).toBe(120)
  expect(await new AuthorityStore(hubStore).snapshots.horizon(DOC)).toBeGreaterThan(0)
  await client.close()
  await hub.close()
  net.stopServer()

  hub = new Hub({ machines: [TodoV2], storage: hubStore, runtime: rt, snapshots: policy })
  const reloaded = await hub.doc(DOC, TodoV2).then((d) => ({ seq: d.headSeq, items: Object.keys(d.state.items).length }), (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`)
  expect(reloaded).toEqual({ seq: 120, items: 120 })
  await hub.close()
})

test("compat mode: a command submitted while an earlier one waits for the hub's upgrade waits too (no clientSeq gap)", async () => {
  const rt = new VirtualRuntime(18)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hubStore = new MemoryStorage()
  let hub = new Hub({ machines: [TodoV1], storage: hubStore, runtime: rt })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("b"), runtime: rt, clientId: "b", storage: new MemoryStorage() })
  const doc = await client.open(TodoV2, DOC)
  const errors: string[] = []
  doc.on("error", (e) => errors.push(e.code))
  doc.submit("add", { id: "x", title: "X", priority: 0 })
  await settle(rt)
  expect(doc.pendingCount).toBe(0)
  // No downcast to v1 for a non-zero priority: it waits.
  doc.submit("setPriority", { id: "x", priority: 3 })
  await settle(rt)
  expect(doc.schemaTooNew).toBe(true)
  // Submitted after it: must wait behind it, not be sent ahead of it.
  doc.submit("toggle", { id: "x" })
  doc.submit("retitle", { id: "x", title: "Y" })
  await settle(rt)
  expect(errors.filter((c) => c === "sequence-gap")).toEqual([])
  expect(doc.pendingCount).toBe(3)

  // After the hub's upgrade, all three are applied once, in order.
  await hub.close()
  net.stopServer()
  hub = new Hub({ machines: [TodoV2], storage: hubStore, runtime: rt })
  net.listen(hub)
  await settle(rt, 10_000)
  const authority = await hub.doc(DOC, TodoV2)
  expect(doc.pendingCount).toBe(0)
  expect(authority.state.items.x).toEqual({ title: "Y", done: true, priority: 3 })
  expect(doc.confirmedHash()).toBe(authority.stateHash())
  await client.close()
  await hub.close()
})
