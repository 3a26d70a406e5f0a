/**
 * Compat mode (an app newer than its hub, core/schema/compat.ts): the hub's snapshot is
 * migrated to the app's version by the app's own migrateState. When that throws on the state
 * (a value written by another client), asking again brings the same state. Before: each
 * failure was reported as a bad snapshot ("snapshot-invalid ... Fetching it again"), asked
 * for again 3 times, then the app stopped following in silence. Now the app is told
 * `migration-failed` with the migration's own sentence; each new state the hub streams is tried
 * once, and the app follows again once the state is one its migration handles.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve } from "../core/schema/versions.js"
import { settle } from "./support/virtual-time.js"

type S1 = { notes: Record<string, string> }
type S2 = { notes: Record<string, { text: string; n: number }> }
const V1 = defineMachine({
  name: "notes",
  version: 1,
  initial: (): S1 => ({ notes: {} }),
  commands: { put: { args: Schema.Struct({ id: Schema.String, text: Schema.String }), apply: (s: S1, a) => { s.notes[a.id] = a.text } } },
})
const parse = (t: string): number => {
  if (t.startsWith("!")) throw new Error(`cannot parse ${t}`)
  return t.length
}
const V2 = evolve(V1, {
  version: 2,
  migrateState: (s: S1): S2 => ({ notes: Object.fromEntries(Object.entries(s.notes).map(([k, t]) => [k, { text: t, n: parse(t) }])) }),
  commands: { put: { args: Schema.Struct({ id: Schema.String, text: Schema.String }), apply: (s: S2, a: { id: string; text: string }) => { s.notes[a.id] = { text: a.text, n: 0 } } } },
})

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
