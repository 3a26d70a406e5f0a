/**
 * A first-field version whose migrateState returns a state that is not a plain object (the
 * fields cannot be put on it): the hub must hold the document at v1 unchanged, as for a
 * migration that throws; a stored v1 replica opened by the v2 app must still open.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../core/index.js"
import { yText } from "../adapters/yjs/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { versionsWorld } from "./support/versions-world.js"

const DOC = "p"
type Pad = { title: string }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }
const PlainV1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "" }), commands: { rename } })
/** v2's migration returns an array for the title "arr" (an app bug: not a plain object). */
const PadV2 = evolve(PlainV1, {
  version: 2,
  crdt: { notes: yText() },
  migrateState: (s: Pad): Pad => (s.title === "arr" ? ([s.title] as unknown as Pad) : { title: s.title }),
  commands: { rename },
})
const V1 = historyOf(PadV2)!.at(1) as typeof PlainV1

const world = () => versionsWorld(DOC)

test("hub: a first-field migration returning a non-object holds the document at v1 with its state unchanged", async () => {
  const w = world()
  await w.start(PlainV1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.submit("rename", { title: "arr" })
  await w.run(1000)
  const hub = await w.start(PadV2)
  const hd = await hub.doc(DOC, PadV2)
  expect(hd.version).toBe(1)
  expect(hd.state).toEqual({ title: "arr" })
  await w.run(1500)
  expect(a.doc.confirmedHash()).toBe(hd.stateHash())
  expect(a.errors).toEqual([])
  expect(w.reports.filter((r) => !r.includes("migration-failed"))).toEqual([])
})

test("replica: a stored v1 replica whose first-field migration returns a non-object still opens with the v2 app", async () => {
  const w = world()
  await w.start(PlainV1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.submit("rename", { title: "arr" })
  await w.run(1000)
  await a.client.close()
  const up = await w.open(PadV2, "a", a.storage)
  expect(up.doc.crdt.notes.toString()).toBe("")
})
