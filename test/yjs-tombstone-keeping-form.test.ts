/**
 * The keeping form of a refused tombstone (adapters/yjs/tombstone.ts `tombstoneOf` with
 * `dependents`, level 1 in core/crdt/replica.ts `refused`) kept as deleted items only the
 * items the writer's changes still to land are placed against, and GC'd the rest of the
 * refused change, including items a kept one is itself placed against. Minimal case: text
 * "ab"; one refused transaction types B between a and b, then A between a and B (A's right
 * origin is B); then Y between a and A. Its tombstone of deleted items is refused too; the
 * keeping form was GC(B), A, which the hub refuses as malformed (crdt-invalid, integrable.ts
 * OriginCheck: "one of them was collected ..., the other is in a list"), and Y with it: the
 * app was told `rejected` for Y, which the hub never refused for what it carries. The other
 * face (found by the property below): a kept item whose origin is collected and whose right
 * origin is none was taken, then collected by Yjs on arrival, with the writer's edit placed
 * against it: confirmed, and gone everywhere.
 * Now what a kept item is placed against is kept too, transitively (`keptItems`), so the
 * keeping form is integrable by construction. All three tests fail before the fix (the engine
 * test: the form refused crdt-invalid, Y refused crdt-missing-deps; the hub test: #6 and #9
 * rejected crdt-invalid, the reader "head tail"; the property: text "a" where "aa").
 */
import fc from "fast-check"
import * as Y from "yjs"
import { offlineWriter } from "./support/yjs-offline-writer.js"
import { yjsEngine } from "../adapters/yjs/engine.js"
import { tombstoneOf } from "../adapters/yjs/tombstone.js"
import { notIntegrable } from "../adapters/yjs/integrable.js"

test("engine: the keeping form keeps what a kept item is placed against", () => {
  const engine = yjsEngine<Y.Text>("text")
  const hub = engine.create()
  const writer = new Y.Doc({ gc: true })
  writer.clientID = 7
  const text = writer.getText("t")
  const updates: Uint8Array[] = []
  writer.on("update", (u: Uint8Array) => updates.push(u))
  text.insert(0, "ab") // confirmed
  writer.transact(() => {
    text.insert(1, "B") // refused, with A: B between a and b
    text.insert(1, "A") // A between a and B (its right origin is B)
  })
  text.insert(1, "Y") // between a and A: the writer's change still to land
  expect(text.toString()).toBe("aYABb")
  const [base, refused, y] = updates as [Uint8Array, Uint8Array, Uint8Array]
  const told: string[] = []
  const submit = (u: Uint8Array): boolean => {
    const r = hub.validate(u, { clientId: "w", trusted: false })
    if (!r.ok) {
      told.push(r.rejection.message.slice(0, 100))
      return false
    }
    hub.apply([r.update])
    return true
  }
  expect(submit(base)).toBe(true)
  // `refused` and its tombstone of deleted items are refused (the field is full, say): the keeping form goes.
  const deletedItems = tombstoneOf(writer, refused)!
  const keeping = tombstoneOf(writer, deletedItems, [y])!
  const accepted = [submit(keeping), submit(y)]
  expect({ accepted, text: (hub.handle as Y.Text).toString(), told }).toEqual({ accepted: [true, true], text: "aYb", told: [] })
})

test("hub: an edit typed next to a kept item whose neighbour in the refused change is collected lands", async () => {
  const { w, r, told, run, comeBack, close } = await offlineWriter(9)
  w.crdt.body.doc!.transact(() => {
    w.crdt.body.insert(1, "B")
    w.crdt.body.insert(1, "A")
    w.crdt.body.insert(8, "3")
    w.crdt.body.insert(6, "4")
    w.crdt.body.insert(11, "5")
    w.crdt.body.insert(13, "6")
  })
  await run(20)
  expect(w.crdt.body.toString()).toBe("hABead4 t3a5i6l")
  w.crdt.body.insert(1, "Y")
  await run(20)
  expect(w.crdt.body.toString()).toBe("hYABead4 t3a5i6l")
  await comeBack()
  expect(w.pendingCount).toBe(0)
  expect({ reader: r.crdt.body.toString(), writer: w.crdt.body.toString(), told }).toEqual({
    reader: "hYead tail",
    writer: "hYead tail",
    told: ["#2 rejected crdt-too-large", "#4 rejected crdt-too-large"],
  })
  await close()
})

/** An edit of a text: insert `text` or delete `len` characters at `at` (taken modulo the text's length). */
const edit = fc.record({ at: fc.nat(), del: fc.boolean(), len: fc.integer({ min: 1, max: 3 }), text: fc.stringMatching(/^[a-z]{1,3}$/) })
type Edit = { at: number; del: boolean; len: number; text: string }
const applyEdit = (t: Y.Text, e: Edit) => {
  const n = t.length
  if (e.del && n > 0) {
    const at = e.at % n
    t.delete(at, Math.min(e.len, n - at))
  } else t.insert(e.at % (n + 1), e.text)
}

test("property: the keeping form of a refused tombstone always integrates on the hub's document, and the writer's later edits land", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), edit), { minLength: 1, maxLength: 6 }),
      fc.array(edit, { minLength: 1, maxLength: 8 }),
      fc.array(fc.array(edit, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }),
      (base, refusedEdits, later) => {
        // Base: the writer's and a peer's edits, confirmed on the hub.
        const writer = new Y.Doc({ gc: true })
        writer.clientID = 1
        const peer = new Y.Doc({ gc: true })
        peer.clientID = 2
        for (const [byPeer, e] of base) {
          applyEdit((byPeer ? peer : writer).getText("t"), e)
          Y.applyUpdate(byPeer ? writer : peer, Y.encodeStateAsUpdate(byPeer ? peer : writer))
        }
        const baseState = Y.encodeStateAsUpdate(writer)
        const updates: Uint8Array[] = []
        writer.on("update", (u: Uint8Array) => updates.push(u))
        // Offline: one refused change (a transaction of edits), then the writer's changes still to land.
        writer.transact(() => refusedEdits.forEach((e) => applyEdit(writer.getText("t"), e)))
        for (const step of later) writer.transact(() => step.forEach((e) => applyEdit(writer.getText("t"), e)))
        const [refused, ...dependents] = updates
        fc.pre(refused !== undefined)
        const deletedItems = tombstoneOf(writer, refused)
        fc.pre(deletedItems !== undefined)
        const keeping = tombstoneOf(writer, deletedItems, dependents)
        fc.pre(keeping !== undefined)
        // A fresh copy of the hub's document: the keeping form integrates there (the hub's own check).
        const copy = new Y.Doc({ gc: true })
        Y.applyUpdate(copy, baseState)
        const sv = Y.decodeStateVector(Y.encodeStateVector(copy))
        expect(notIntegrable(keeping, Y.decodeUpdate(keeping), (c) => sv.get(c) ?? 0, copy)).toBeUndefined()
        // And through the field engine, with the writer's later changes after it: all accepted,
        // and the text is what the tombstone of deleted items and the same changes give.
        const hub = yjsEngine<Y.Text>("text").create()
        const told: string[] = []
        for (const u of [baseState, keeping, ...dependents]) {
          const r = hub.validate(u, { clientId: "w", trusted: false })
          if (r.ok) hub.apply([r.update])
          else told.push(r.rejection.message)
        }
        const reference = new Y.Doc({ gc: true })
        for (const u of [baseState, deletedItems, ...dependents]) Y.applyUpdate(reference, u)
        expect({ text: (hub.handle as Y.Text).toString(), told }).toEqual({ text: reference.getText("t").toString(), told: [] })
      },
    ),
    { numRuns: 500 },
  )
})
