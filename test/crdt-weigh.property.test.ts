/**
 * `CrdtEngine.weigh` reads an update's work from its bytes, without decoding, for the hub to
 * charge where a submit enters (hub-crdt-work.test.ts). It must never read less work than
 * decoding finds: random honest edits of both engines' fields, with long runs (a run of
 * deletes is a few bytes for any length), weigh at least their decoded ops (Automerge, 20 µs
 * each, 35 a change) or structs and deleted ranges (Yjs, 2 and 9 µs each, and 1 a byte).
 */
import fc from "fast-check"
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { automergeDoc, automergeText } from "../adapters/automerge/index.js"
import { yText } from "../adapters/yjs/index.js"
import type { CrdtEngine } from "../core/crdt/engine.js"

/** Every Automerge update weighs at least its decoded ops (20 µs each) and changes (35 µs each). */
const expectWeighsDecodedOps = (engine: CrdtEngine<any>, updates: unknown[]): void => {
  for (const u of updates) {
    const changes = u as Uint8Array[]
    const ops = changes.reduce((n, c) => n + A.decodeChange(c).ops.length, 0)
    expect(engine.weigh(u)).toBeGreaterThanOrEqual(20 * ops + 35 * changes.length)
  }
}

type Edit =
  | { readonly k: "insert"; readonly at: number; readonly n: number }
  | { readonly k: "delete"; readonly at: number; readonly n: number }

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ k: fc.constant("insert" as const), at: fc.nat(), n: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 100, max: 3_000 })) }),
  fc.record({ k: fc.constant("delete" as const), at: fc.nat(), n: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 100, max: 3_000 })) }),
)

test("Automerge text: weigh is at least the decoded ops and changes of every update", () => {
  const engine = automergeText().engine
  fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 12 }), (edits) => {
    const field = engine.create()
    const updates: unknown[] = []
    field.onLocalChange((u) => updates.push(u))
    for (const e of edits) {
      const len = field.handle.text.length
      if (e.k === "insert") field.handle.splice(e.at % (len + 1), 0, "ab".repeat(e.n).slice(0, e.n))
      else if (len > 0) field.handle.splice(e.at % len, Math.min(e.n, len - (e.at % len)), "")
    }
    expectWeighsDecodedOps(engine, updates)
    field.destroy()
  }), { numRuns: 40 })
})

test("Automerge document: map puts, nested values and list edits weigh at least their decoded ops", () => {
  const engine = automergeDoc({ m: {} as Record<string, unknown>, list: [] as unknown[] }).engine
  const step = fc.oneof(
    fc.record({ k: fc.constant("puts" as const), n: fc.integer({ min: 1, max: 2_000 }), v: fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null)) }),
    fc.record({ k: fc.constant("list" as const), n: fc.integer({ min: 1, max: 2_000 }) }),
    fc.record({ k: fc.constant("unlist" as const), n: fc.integer({ min: 1, max: 2_000 }) }),
    fc.record({ k: fc.constant("nested" as const), v: fc.integer() }),
  )
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 8 }), (steps) => {
    const field = engine.create()
    const updates: unknown[] = []
    field.onLocalChange((u) => updates.push(u))
    for (const s of steps) {
      field.handle.change((d: any) => {
        if (s.k === "puts") for (let i = 0; i < s.n; i++) d.m[`k${i}`] = s.v
        else if (s.k === "list") d.list.insertAt(0, ...Array.from({ length: s.n }, (_, i) => i))
        else if (s.k === "unlist") d.list.deleteAt(0, Math.min(s.n, d.list.length))
        else d.m.nested = { v: s.v, inner: [s.v, { w: s.v }] }
      })
    }
    expectWeighsDecodedOps(engine, updates)
    field.destroy()
  }), { numRuns: 30 })
})

test("Yjs text: weigh is at least the update's bytes, decoded structs and deleted ranges", () => {
  const engine = yText().engine
  // The clientID drawn (Yjs's own is random, and its width is in every update): a seed replays.
  fc.assert(fc.property(fc.array(fc.tuple(edit, fc.boolean()), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 2 ** 32 - 1 }), (edits, clientID) => {
    const doc = new Y.Doc()
    doc.clientID = clientID
    const text = doc.getText("t")
    const updates: Uint8Array[] = []
    doc.on("update", (u: Uint8Array) => updates.push(u))
    for (const [e, alternate] of edits) {
      const len = text.length
      if (e.k === "insert") text.insert(e.at % (len + 1), "ab".repeat(e.n).slice(0, e.n))
      else if (len > 0 && !alternate) text.delete(e.at % len, Math.min(e.n, len - (e.at % len)))
      // Every other character: a delete set of many ranges.
      else if (len > 0) doc.transact(() => { for (let i = e.at % len; i < text.length; i++) text.delete(i, 1) })
    }
    for (const u of [...updates, Y.encodeStateAsUpdate(doc)]) {
      const decoded = Y.decodeUpdate(u)
      let ranges = 0
      for (const list of decoded.ds.clients.values()) ranges += list.length
      expect(engine.weigh(u)).toBeGreaterThanOrEqual(u.length + 2 * decoded.structs.length + 9 * ranges)
    }
    doc.destroy()
  }), { numRuns: 40 })
})
