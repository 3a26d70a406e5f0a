/**
 * A chain plain v1 -> v2 (first field, Yjs) -> v3 (adds an Automerge field), the hub jumping
 * from v1 to v3; a big plain state (past the hub's background-hash bound) upgraded.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../core/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { versionsWorld } from "./support/versions-world.js"

const DOC = "p"
type Pad = { title: string; blobs: string[] }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }
const add = { args: Schema.Struct({ blob: Schema.String }), apply: (s: Pad, { blob }: { readonly blob: string }) => { s.blobs.push(blob) } }
const PlainV1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "", blobs: [] }), commands: { rename, add } })
const PadV2 = evolve(PlainV1, { version: 2, crdt: { notes: yText() }, migrateState: (s: Pad): Pad => s, commands: { rename, add } })
const PadV3 = evolve(PadV2, { version: 3, crdt: { body: automergeText() }, migrateState: (s: Pad): Pad => s, commands: { rename, add } })
const h = historyOf(PadV3)!
const V1 = h.at(1) as typeof PlainV1
const V2 = h.at(2) as typeof PadV2

const world = () => versionsWorld(DOC)

test("hub jumps v1 -> v3: a v2 app (compat) and a v3 app agree; the v2 app's stored replica opened by v3", async () => {
  const w = world()
  await w.start(PlainV1)
  const a = await w.open(V1, "a")
  const b = await w.open(V2, "b")
  await w.run(1000)
  a.doc.submit("rename", { title: "one" })
  b.doc.crdt.notes.insert(0, "held by v2")
  await w.run(1000)
  const hub = await w.start(PadV3)
  const hd = await hub.doc(DOC, PadV3)
  expect(hd.version).toBe(3)
  const c = await w.open(PadV3, "c")
  await w.run(3000)
  expect(b.doc.pendingCount).toBe(0)
  c.doc.crdt.body.splice(0, 0, "body")
  c.doc.crdt.notes.insert(0, "c ")
  await w.run(2000)
  expect([c.doc.crdt.notes.toString(), c.doc.crdt.body.text, c.doc.state.title]).toEqual(["c held by v2", "body", "one"])
  expect(b.doc.crdt.notes.toString()).toBe("c held by v2")
  expect(c.doc.confirmedHash()).toBe(hd.stateHash())
  await b.client.close()
  const b3 = await w.open(PadV3, "b", b.storage)
  await w.run(2000)
  expect([b3.doc.crdt.notes.toString(), b3.doc.crdt.body.text]).toEqual(["c held by v2", "body"])
  expect(b3.doc.confirmedHash()).toBe(hd.stateHash())
  const again = await w.start(PadV3)
  expect((await again.doc(DOC, PadV3)).stateHash()).toBe(c.doc.confirmedHash())
  expect([...a.errors, ...b.errors.filter((e) => !e.startsWith("schema-too-new")), ...c.errors, ...b3.errors, ...w.reports]).toEqual([])
})

test("a big plain state (over 1 MB) upgraded to fields: checkpoints and hashes agree, restart agrees", async () => {
  const w = world()
  const big = { maxCommandBytes: 256 << 10, maxMessageBytes: 4 << 20 }
  await w.start(PlainV1, big)
  const a = await w.open(V1, "a")
  await w.run(100)
  for (let i = 0; i < 6; i++) a.doc.submit("add", { blob: `${i}`.repeat(200_000) })
  await w.run(3000)
  expect(a.doc.pendingCount).toBe(0)
  expect(JSON.stringify(a.doc.state).length).toBeGreaterThan(1_100_000)
  a.doc.submit("rename", { title: "big" })
  await w.run(2000)
  const hub = await w.start(PadV2, big)
  const hd = await hub.doc(DOC, PadV2)
  const b = await w.open(PadV2, "b")
  await w.run(3000)
  b.doc.crdt.notes.insert(0, "n")
  b.doc.submit("rename", { title: "big2" })
  await w.run(3000)
  expect(b.doc.confirmedHash()).toBe(hd.stateHash())
  const again = await w.start(PadV2, big)
  const hd2 = await again.doc(DOC, PadV2)
  expect(hd2.stateHash()).toBe(b.doc.confirmedHash())
  expect([...a.errors, ...b.errors, ...w.reports]).toEqual([])
}, 30000)
