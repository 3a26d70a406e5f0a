/**
 * A later version of a machine with CRDT fields may add fields (`evolve(..., { crdt })`). The
 * added field starts empty everywhere the document is migrated (the hub's upgrade at load, a
 * stored replica opened by the new app, a new app's view of an older hub); its merges go down
 * to an older version as nothing, so older apps keep following; an app's edits to it wait, with
 * what follows them, for a hub that runs the version that has it. Hashes agree: the hub counts
 * the added field from the checkpoint of its `$migrate` entry on, as a replica of that version does.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../core/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { COMPACTING, versionsWorld } from "./support/versions-world.js"

const DOC = "p"
type Pad = { title: string }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }

const PadV1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "" }), crdt: { body: yText() }, commands: { rename } })
/** v2 adds a Yjs `notes` field and an Automerge `log` field; the state migration throws on a title "boom". */
const PadV2 = evolve(PadV1, {
  version: 2,
  crdt: { notes: yText(), log: automergeText() },
  migrateState: (s: Pad): Pad => {
    if (s.title === "boom") throw new Error("boom")
    return { title: s.title }
  },
  commands: { rename },
})
const V1 = historyOf(PadV2)!.at(1) as typeof PadV1

const world = (snapshots?: typeof COMPACTING) => versionsWorld(DOC, snapshots)

describe("evolve", () => {
  test("a version adds fields; their merges go down to an older version as nothing", () => {
    expect(Object.keys(PadV2.crdt ?? {}).sort()).toEqual(["body", "log", "notes"])
    expect(["$crdt.body", "$crdt.notes", "$crdt.log"].every((n) => PadV2.compiled.has(n))).toBe(true)
    expect(V1.compiled.has("$crdt.notes")).toBe(false)
    const h = historyOf(PadV2)!
    const body = { name: "$crdt.body", args: new Uint8Array([1]) }
    const notes = { name: "$crdt.notes", args: new Uint8Array([2]) }
    expect(h.convert([body, notes], 2, 1)).toEqual([body])
    expect(h.convert([notes], 2, 1)).toEqual([])
    expect(h.convert([body], 1, 2)).toEqual([body])
    // An older app's outbox never holds an added field's merge; a newer one's cannot be sent down.
    expect(h.downcastOutbox([{ clientSeq: 1, name: "$crdt.notes", args: new Uint8Array([2]), encoded: new Uint8Array([2]) }], 2, 1).stuck).toBe("$crdt.notes")
  })

  test("refuses a field the previous version has (a machine's first fields: schema-crdt-first-field)", () => {
    expect(() => evolve(PadV1, { version: 2, crdt: { body: yText() }, migrateState: (s: Pad) => s, commands: { rename } })).toThrow(/"body" is v1's already/)
  })
})

describe.each([["its log", undefined], ["snapshots", COMPACTING]] as const)("served from %s", (_, snapshots) => {
  test("a hub upgraded to v2 starts the added fields empty; v1 apps keep following, v2 apps write them; all hashes agree", async () => {
    const w = world(snapshots)
    await w.start(PadV1)
    const a = await w.open(V1, "a")
    await w.run(100)
    for (let i = 0; i < 4; i++) {
      a.doc.crdt.body.insert(a.doc.crdt.body.length, `line ${i} `.repeat(150))
      await w.run(100)
    }
    a.doc.submit("rename", { title: "T" })
    await w.run(1000)
    const body = a.doc.crdt.body.toString()
    expect(a.doc.pendingCount).toBe(0)

    const hub = await w.start(PadV2)
    const hd = await hub.doc(DOC, PadV2)
    expect(hd.version).toBe(2)
    const b = await w.open(PadV2, "b")
    await w.run(1500)
    expect([b.doc.crdt.body.toString(), b.doc.crdt.notes.toString(), b.doc.crdt.log.text, b.doc.state]).toEqual([body, "", "", { title: "T" }])
    // The v2 replica's hash, which counts the empty added fields, is the hub's.
    expect(b.doc.confirmedHash()).toBe(hd.stateHash())

    b.doc.crdt.notes.insert(0, "notes by v2")
    b.doc.crdt.log.splice(0, 0, "log by v2")
    b.doc.crdt.body.insert(0, "B:")
    a.doc.crdt.body.insert(0, "A:")
    a.doc.submit("rename", { title: "T2" })
    await w.run(3000)
    expect([...a.errors, ...b.errors]).toEqual([])
    expect([a.doc.pendingCount, b.doc.pendingCount]).toEqual([0, 0])
    // v1 sees everything it has a field for, and none of its edits waited.
    expect(a.doc.crdt.body.toString()).toBe(b.doc.crdt.body.toString())
    expect(a.doc.crdt.body.toString()).toMatch(/^(A:B:|B:A:)/)
    expect(a.doc.state).toEqual({ title: "T2" })
    expect([b.doc.crdt.notes.toString(), b.doc.crdt.log.text]).toEqual(["notes by v2", "log by v2"])
    expect(b.doc.confirmedHash()).toBe(hd.stateHash())

    // Loaded again (its snapshot after the upgrade, or its log through the `$migrate` entry).
    const again = await w.start(PadV2)
    const hd2 = await again.doc(DOC, PadV2)
    expect(hd2.stateHash()).toBe(b.doc.confirmedHash())
    const c = await w.open(PadV2, "c")
    await w.run(2000)
    expect([c.doc.crdt.notes.toString(), c.doc.crdt.log.text, c.doc.crdt.body.toString()]).toEqual(["notes by v2", "log by v2", b.doc.crdt.body.toString()])
    expect(c.doc.confirmedHash()).toBe(hd2.stateHash())
    const a2 = await w.open(V1, "a2")
    await w.run(2000)
    // A new v1 reader: from the log it follows; behind a v2 snapshot it is told to update.
    if (snapshots === undefined) expect([a2.doc.crdt.body.toString(), a2.errors]).toEqual([b.doc.crdt.body.toString(), []])
    expect([...b.errors, ...c.errors, ...w.reports]).toEqual([])
  })
})

test("a stored v1 replica opened by the v2 app keeps its text, sent and unsent; the added fields start empty", async () => {
  const w = world()
  await w.start(PadV1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.crdt.body.insert(0, "sent")
  await w.run(1000)
  w.net.partition("a")
  await w.run(100)
  a.doc.crdt.body.insert(4, "+offline")
  await w.run(100)
  expect(a.doc.pendingCount).toBeGreaterThan(0)
  await a.client.close()

  const hub = await w.start(PadV2)
  const again = await w.open(PadV2, "a", a.storage)
  expect([again.doc.crdt.body.toString(), again.doc.crdt.notes.toString()]).toEqual(["sent+offline", ""])
  again.doc.crdt.notes.insert(0, "n")
  w.net.heal("a")
  await w.run(2000)
  const b = await w.open(PadV2, "b")
  await w.run(1000)
  expect([b.doc.crdt.body.toString(), b.doc.crdt.notes.toString()]).toEqual(["sent+offline", "n"])
  expect([again.doc.confirmedHash(), b.doc.confirmedHash()]).toEqual([(await hub.doc(DOC, PadV2)).stateHash(), (await hub.doc(DOC, PadV2)).stateHash()])
  expect([...again.errors, ...b.errors, ...w.reports]).toEqual([])
})

test("a v2 app on a v1 hub: edits to an added field wait, with what follows them, until the hub is upgraded; nothing is lost", async () => {
  const w = world()
  await w.start(PadV1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.crdt.body.insert(0, "v1 text")
  await w.run(1000)
  const b = await w.open(PadV2, "b")
  await w.run(1500)
  expect(b.doc.crdt.body.toString()).toBe("v1 text")
  const waits: string[] = []
  b.doc.on("error", (e) => waits.push(e.code))
  b.doc.crdt.body.insert(0, "before ")
  await w.run(1000)
  expect(a.doc.crdt.body.toString()).toBe("before v1 text")
  b.doc.crdt.notes.insert(0, "held")
  await w.run(100)
  b.doc.crdt.body.insert(b.doc.crdt.body.length, " after")
  await w.run(2000)
  expect(b.doc.pending.map((p) => p.name)).toEqual(["$crdt.notes", "$crdt.body"])
  // Told once, with what to do (the app's own edits are kept).
  expect(waits).toEqual(["schema-too-new"])
  // Waits: neither the note nor the body edit after it reached the v1 hub.
  expect(a.doc.crdt.body.toString()).toBe("before v1 text")

  const hub = await w.start(PadV2)
  await w.run(4000)
  expect(b.doc.pendingCount).toBe(0)
  const c = await w.open(PadV2, "c")
  await w.run(2000)
  expect([c.doc.crdt.notes.toString(), c.doc.crdt.body.toString()]).toEqual(["held", "before v1 text after"])
  expect(a.doc.crdt.body.toString()).toBe("before v1 text after")
  expect(b.doc.confirmedHash()).toBe((await hub.doc(DOC, PadV2)).stateHash())
  expect([...a.errors, ...w.reports]).toEqual([])
})

test("a document held at v1 (its migration fails) hashes as v1: v1 replicas agree with it", async () => {
  const w = world()
  await w.start(PadV1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.crdt.body.insert(0, "text")
  a.doc.submit("rename", { title: "boom" })
  await w.run(1000)
  const hub = await w.start(PadV2)
  const hd = await hub.doc(DOC, PadV2)
  expect(hd.version).toBe(1)
  a.doc.crdt.body.insert(4, "!")
  await w.run(1500)
  const d = await w.open(V1, "d")
  await w.run(1500)
  expect(d.doc.crdt.body.toString()).toBe("text!")
  expect([a.doc.confirmedHash(), d.doc.confirmedHash()]).toEqual([hd.stateHash(), hd.stateHash()])
  expect([...a.errors, ...d.errors]).toEqual([])
  expect(w.reports.filter((r) => !r.includes("migration-failed"))).toEqual([])
})

test("a v1 replica that followed a v2 hub's edits to the added field, upgraded on its storage, takes the field's content", async () => {
  const w = world()
  await w.start(PadV2)
  const a = await w.open(V1, "a")
  const b = await w.open(PadV2, "b")
  await w.run(200)
  a.doc.crdt.body.insert(0, "body")
  b.doc.crdt.notes.insert(0, "notes one")
  await w.run(1000)
  // v1 was shown the notes as nothing: its confirmed state has no notes at this seq.
  expect(a.doc.crdt.body.toString()).toBe("body")
  await w.run(100)
  await a.client.close()
  const up = await w.open(PadV2, "a", a.storage)
  b.doc.crdt.notes.insert(9, ", two")
  await w.run(2000)
  expect([up.doc.crdt.body.toString(), up.doc.crdt.notes.toString()]).toEqual(["body", "notes one, two"])
  expect(up.doc.confirmedHash()).toBe((await (await w.start(PadV2)).doc(DOC, PadV2)).stateHash())
  expect([...up.errors, ...b.errors, ...w.reports]).toEqual([])
})
