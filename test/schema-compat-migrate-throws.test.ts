/**
 * Compat mode (an app newer than its hub, core/schema/compat.ts): the hub's snapshot is
 * migrated to the app's version by the app's own migrateState. When that throws on the state
 * (a value written by another client), asking again brings the same state. Before: each
 * failure was reported as a bad snapshot ("snapshot-invalid ... Fetching it again"), asked
 * for again 3 times, then the app stopped following in silence. Now the app is told
 * `migration-failed` with the migration's own sentence; each new state the hub streams is tried
 * once, and the app follows again once the state is one its migration handles.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { settle } from "./support/virtual-time.js"
import { NotesV1, NotesV2Throws } from "./support/notes-migration.js"

const V1 = NotesV1
const V2 = NotesV2Throws

test("a snapshot the app's own migrateState throws on: migration-failed, told with its sentence, not asked for again and again", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [V1], storage: new MemoryStorage(), runtime: rt, snapshotLagEntries: 1, snapshots: { minLogBytes: 1, logRatio: 0 } })
  net.listen(hub)
  const w = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const wd = await w.open(V1, "d")
  wd.submit("put", { id: "b", text: "!boom" })
  for (let i = 0; i < 10; i++) wd.submit("put", { id: `n${i}`, text: "fine" })
  await settle(rt, 5000)
  await (await hub.doc("d", V1)).snapshotNow()

  const app = await CanonClient.open({ transport: net.transport("app"), runtime: rt, clientId: "app", storage: new MemoryStorage() })
  const ad = await app.open(V2, "d")
  const errors: Array<{ code: string; message: string }> = []
  ad.on("error", (e) => errors.push(e))
  await settle(rt, 5000)
  expect(errors.filter((e) => e.code === "snapshot-invalid")).toEqual([])
  const failed = errors.filter((e) => e.code === "migration-failed")
  expect(failed.length).toBe(1)
  expect(failed[0]!.message).toMatch(/The state migration of "notes" from v1 to v2 threw: cannot parse !boom/)
  expect(ad.state).toEqual({ notes: {} }) // nothing of the hub's state shown on a wrong base
  // Each new state the hub streams is tried once (one error each, never a loop of asks)...
  for (let i = 0; i < 3; i++) {
    wd.submit("put", { id: `m${i}`, text: "more" })
    await settle(rt, 2000)
  }
  expect(errors.filter((e) => e.code === "migration-failed").length).toBeLessThanOrEqual(1 + 3)
  // ...and once the value it throws on is gone, the app follows.
  wd.submit("put", { id: "b", text: "fixed" })
  await settle(rt, 5000)
  const head = (await hub.doc("d", V1)).headSeq
  expect(ad.confirmedSeq).toBe(head)
  expect(ad.state.notes["b"]).toEqual({ text: "fixed", n: 5 })
  expect(errors.filter((e) => e.code === "snapshot-invalid")).toEqual([])
  await w.close()
  await app.close()
  await hub.close()
})
