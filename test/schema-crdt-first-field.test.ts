/**
 * A later version may give a machine its first CRDT fields (`evolve(PlainV1, { version: 2,
 * crdt: { notes: yText() }, ... })`): the document's plain state becomes a fields machine's at
 * the hub's `$migrate` entry (its checkpoint counts the new, empty fields; the load after it
 * hashes the state as a fields machine's), a stored plain replica opened by the new app starts
 * them empty, older apps are shown their edits as nothing, and a newer app's edits to them wait
 * for a hub at that version. test/schema-crdt-added-field.test.ts has a machine that had fields.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../core/index.js"
import { yText } from "../adapters/yjs/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { COMPACTING, versionsWorld } from "./support/versions-world.js"

const DOC = "p"
type Pad = { title: string }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }

const PlainV1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "" }), commands: { rename } })
/** v2 gives the pad its first field, a Yjs `notes`; the migration throws on a title "boom". */
const PadV2 = evolve(PlainV1, {
  version: 2,
  crdt: { notes: yText() },
  migrateState: (s: Pad): Pad => {
    if (s.title === "boom") throw new Error("boom")
    return { title: s.title }
  },
  commands: { rename },
})
const V1 = historyOf(PadV2)!.at(1) as typeof PlainV1

const world = (snapshots?: typeof COMPACTING) => versionsWorld(DOC, snapshots)

test("a version gives a plain machine its first field; its merges go down as nothing", () => {
  expect(PlainV1.crdt).toBeUndefined()
  expect(Object.keys(PadV2.crdt ?? {})).toEqual(["notes"])
  const notes = { name: "$crdt.notes", args: new Uint8Array([2]) }
  const rn = { name: "rename", args: { title: "x" } }
  expect(historyOf(PadV2)!.convert([rn, notes], 2, 1)).toEqual([rn])
})

describe.each([["its log", undefined], ["snapshots", COMPACTING]] as const)("served from %s", (_, snapshots) => {
  test("a hub upgraded to v2 gives the document its field; v1 apps keep following, v2 apps write it; all hashes agree", async () => {
    const w = world(snapshots)
    await w.start(PlainV1)
    const a = await w.open(V1, "a")
    await w.run(100)
    for (let i = 0; i < 30; i++) a.doc.submit("rename", { title: `title ${i} `.repeat(20) })
    a.doc.submit("rename", { title: "T" })
    await w.run(1000)
    expect(a.doc.pendingCount).toBe(0)

    const hub = await w.start(PadV2)
    const hd = await hub.doc(DOC, PadV2)
    expect(hd.version).toBe(2)
    const b = await w.open(PadV2, "b")
    await w.run(1500)
    expect([b.doc.crdt.notes.toString(), b.doc.state]).toEqual(["", { title: "T" }])
    expect(b.doc.confirmedHash()).toBe(hd.stateHash())

    b.doc.crdt.notes.insert(0, "notes by v2")
    b.doc.submit("rename", { title: "by v2" })
    await w.run(200)
    a.doc.submit("rename", { title: "by v1" })
    await w.run(3000)
    expect([...a.errors, ...b.errors]).toEqual([])
    expect([a.doc.pendingCount, b.doc.pendingCount]).toEqual([0, 0])
    expect([a.doc.state, b.doc.state]).toEqual([{ title: "by v1" }, { title: "by v1" }])
    expect(b.doc.crdt.notes.toString()).toBe("notes by v2")
    expect(b.doc.confirmedHash()).toBe(hd.stateHash())

    const again = await w.start(PadV2)
    const hd2 = await again.doc(DOC, PadV2)
    expect(hd2.stateHash()).toBe(b.doc.confirmedHash())
    const c = await w.open(PadV2, "c")
    await w.run(2000)
    expect([c.doc.crdt.notes.toString(), c.doc.state]).toEqual(["notes by v2", { title: "by v1" }])
    expect(c.doc.confirmedHash()).toBe(hd2.stateHash())
    expect([...b.errors, ...c.errors, ...w.reports]).toEqual([])
  })
})

test("a stored plain v1 replica opened by the v2 app keeps its unsent commands; the field starts empty and takes the hub's content", async () => {
  const w = world()
  await w.start(PadV2)
  const b = await w.open(PadV2, "b")
  const a = await w.open(V1, "a")
  await w.run(200)
  b.doc.crdt.notes.insert(0, "hub notes")
  await w.run(1000)
  w.net.partition("a")
  await w.run(100)
  a.doc.submit("rename", { title: "offline" })
  await w.run(100)
  await a.client.close()
  const up = await w.open(PadV2, "a", a.storage)
  expect([up.doc.crdt.notes.toString(), up.doc.state]).toEqual(["", { title: "offline" }])
  w.net.heal("a")
  await w.run(2000)
  expect([up.doc.crdt.notes.toString(), up.doc.state]).toEqual(["hub notes", { title: "offline" }])
  expect(up.doc.confirmedHash()).toBe((await (await w.start(PadV2)).doc(DOC, PadV2)).stateHash())
  expect([...up.errors, ...b.errors, ...w.reports]).toEqual([])
})

test("a v2 app on a plain v1 hub: its edits to the field wait until the hub is upgraded; nothing is lost", async () => {
  const w = world()
  await w.start(PlainV1)
  const a = await w.open(V1, "a")
  const b = await w.open(PadV2, "b")
  await w.run(1500)
  b.doc.submit("rename", { title: "before" })
  await w.run(1000)
  expect(a.doc.state).toEqual({ title: "before" })
  b.doc.crdt.notes.insert(0, "held")
  await w.run(100)
  b.doc.submit("rename", { title: "after" })
  await w.run(2000)
  expect(b.doc.pending.map((p) => p.name)).toEqual(["$crdt.notes", "rename"])
  expect(a.doc.state).toEqual({ title: "before" })
  const hub = await w.start(PadV2)
  await w.run(4000)
  expect(b.doc.pendingCount).toBe(0)
  expect(a.doc.state).toEqual({ title: "after" })
  const c = await w.open(PadV2, "c")
  await w.run(2000)
  expect([c.doc.crdt.notes.toString(), c.doc.state]).toEqual(["held", { title: "after" }])
  expect(b.doc.confirmedHash()).toBe((await hub.doc(DOC, PadV2)).stateHash())
  expect([...a.errors, ...w.reports]).toEqual([])
})

test("a plain document held at v1 (its migration fails) stays plain: v1 replicas agree with its hash", async () => {
  const w = world()
  await w.start(PlainV1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.submit("rename", { title: "boom" })
  await w.run(1000)
  const hub = await w.start(PadV2)
  const hd = await hub.doc(DOC, PadV2)
  expect(hd.version).toBe(1)
  a.doc.submit("rename", { title: "boom" })
  await w.run(1500)
  const d = await w.open(V1, "d")
  await w.run(1500)
  expect([a.doc.confirmedHash(), d.doc.confirmedHash()]).toEqual([hd.stateHash(), hd.stateHash()])
  expect([...a.errors, ...d.errors]).toEqual([])
  expect(w.reports.filter((r) => !r.includes("migration-failed"))).toEqual([])
})
