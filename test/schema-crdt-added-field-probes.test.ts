/** Probes: stored replicas across two versions, a document held at v2 of three, the size bound's reserve. */
import * as Schema from "effect/Schema"
import { defineMachine } from "../core/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { A1, A2, A3, DOC, V1, V2, world, type Pad } from "./support/added-field-world.js"

test("a stored v1 replica with unsent body edits opened by the v3 app", async () => {
  const w = world()
  await w.start(A1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.crdt.body.insert(0, "sent")
  await w.run(1000)
  w.net.partition("a")
  await w.run(100)
  a.doc.crdt.body.insert(4, "+offline")
  a.doc.submit("rename", { title: "t" })
  await w.run(100)
  await a.client.close()
  const hub = await w.start(A3)
  const again = await w.open(A3, "a", a.storage)
  expect([again.doc.crdt.body.toString(), again.doc.crdt.notes.toString(), again.doc.crdt.log.text]).toEqual(["sent+offline", "", ""])
  again.doc.crdt.log.splice(0, 0, "L")
  again.doc.crdt.notes.insert(0, "N")
  w.net.heal("a")
  await w.run(3000)
  const b = await w.open(A3, "b")
  await w.run(1500)
  expect([b.doc.crdt.body.toString(), b.doc.crdt.notes.toString(), b.doc.crdt.log.text, b.doc.state]).toEqual(["sent+offline", "N", "L", { title: "t" }])
  const h = (await hub.doc(DOC, A3)).stateHash()
  expect([again.doc.confirmedHash(), b.doc.confirmedHash()]).toEqual([h, h])
  expect([...again.errors, ...b.errors, ...w.reports]).toEqual([])
})

test("a document held at v2 of three keeps v2's fields; v2 apps agree with it", async () => {
  const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }
  const B3 = evolve(A2, {
    version: 3, crdt: { log: automergeText() }, commands: { rename },
    migrateState: (s: Pad): Pad => { if (s.title === "boom") throw new Error("boom"); return { title: s.title } },
  })
  const W2 = historyOf(B3)!.at(2) as typeof V2
  const w = world()
  await w.start(W2)
  const a = await w.open(W2, "a")
  await w.run(100)
  a.doc.crdt.notes.insert(0, "n")
  a.doc.submit("rename", { title: "boom" })
  await w.run(1000)
  const hub = await w.start(B3 as never)
  const hd = await hub.doc(DOC, B3)
  expect(hd.version).toBe(2)
  a.doc.crdt.notes.insert(1, "!")
  await w.run(1500)
  const d = await w.open(W2, "d")
  await w.run(1500)
  expect(d.doc.crdt.notes.toString()).toBe("n!")
  expect([a.doc.confirmedHash(), d.doc.confirmedHash()]).toEqual([hd.stateHash(), hd.stateHash()])
  expect([...a.errors, ...d.errors]).toEqual([])
  expect(w.reports.filter((r) => !r.includes("migration-failed"))).toEqual([])
})

test("v1 with only Automerge, v2 adds Yjs: the upgraded document keeps the tombstone reserve", async () => {
  const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }
  const M1 = defineMachine({ name: "am", version: 1, initial: (): Pad => ({ title: "" }), crdt: { log: automergeText() }, commands: { rename } })
  const M2 = evolve(M1, { version: 2, crdt: { body: yText() }, migrateState: (s: Pad): Pad => s, commands: { rename } })
  const w = world()
  await w.start(M1 as never, { crdt: { maxDocumentBytes: 1 << 20 } })
  const a = await w.open(M1 as never, "a")
  await w.run(100)
  ;(a.doc as never as { submit(n: string, a: unknown): void }).submit("rename", { title: "t" })
  await w.run(1000)
  await a.client.close()
  const h2 = await w.start(M2 as never, { crdt: { maxDocumentBytes: 1 << 20 } })
  const d2 = await h2.doc(DOC, M2)
  expect(d2.version).toBe(2)
  expect((d2 as never as { sizeBound: { reserve: number } }).sizeBound.reserve).toBeGreaterThan(0)
})
