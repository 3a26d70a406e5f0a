/**
 * The struct count a Yjs field's merges are bounded by (`structCount`) is the count its stored
 * state is checked against at load (`countV2Structs`): a shared type weighs the same in both.
 * It weighed 1 in the first and 4 in the second, so a field merged to about 1.1M empty Y.Maps
 * passed every merge, under the 2^22 bound, then counted 4.4M at load: the replica's stored
 * document could not be opened again (storage-corrupt), nor a hub's snapshot of it installed
 * (found by a helper's attack review, with merges of 44,000 maps of 247 KB each, under the
 * default maxUpdateBytes). Deletions may collect types, so the tally kept between counts is an
 * upper bound; `exact` counts again.
 */
import * as Y from "yjs"
import fc from "fast-check"
import { countV2Structs, encodeIntegratedV2, weighedStructs as structCount } from "../adapters/yjs/integrable.js"
import { crdtReason, yjsEngine } from "../adapters/yjs/index.js"

type Op =
  | { readonly kind: "map"; readonly at: number; readonly n: number }
  | { readonly kind: "text"; readonly at: number; readonly s: string }
  | { readonly kind: "nested"; readonly at: number }
  | { readonly kind: "delete"; readonly at: number; readonly n: number }
  | { readonly kind: "remote"; readonly n: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("map" as const), at: fc.nat(50), n: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant("text" as const), at: fc.nat(50), s: fc.string({ minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant("nested" as const), at: fc.nat(50) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(50), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant("remote" as const), n: fc.integer({ min: 1, max: 3 }) }),
)

const loadCount = (doc: Y.Doc): number => countV2Structs(encodeIntegratedV2(doc), 1 << 30) as number

test("a document's struct count is its stored state's, shared types weighing the same; after deletions an upper bound until counted again", () => {
  fc.assert(fc.property(fc.array(op, { maxLength: 25 }), fc.boolean(), (ops, gc) => {
    const doc = new Y.Doc({ gc })
    const items = doc.getArray<unknown>("items")
    expect(structCount(doc)).toBe(loadCount(doc))
    let deleted = false
    for (const o of ops) {
      const at = Math.min(o.kind === "remote" ? 0 : o.at, items.length)
      if (o.kind === "map") items.insert(at, Array.from({ length: o.n }, () => new Y.Map()))
      else if (o.kind === "text") items.insert(at, [new Y.Text(o.s)])
      else if (o.kind === "nested") {
        const m = new Y.Map<unknown>()
        m.set("inner", new Y.Array())
        items.insert(at, [m])
      } else if (o.kind === "delete") {
        const n = Math.min(o.n, items.length - at)
        if (n > 0) {
          items.delete(at, n)
          deleted = true
        }
      } else {
        // Another peer's maps, merged as an update.
        const other = new Y.Doc()
        Y.applyUpdate(other, Y.encodeStateAsUpdate(doc))
        other.getArray("items").push(Array.from({ length: o.n }, () => new Y.Map()))
        Y.applyUpdate(doc, Y.encodeStateAsUpdate(other, Y.encodeStateVector(doc)))
      }
      const stored = loadCount(doc)
      if (!deleted) expect(structCount(doc)).toBe(stored)
      else expect(structCount(doc)).toBeGreaterThanOrEqual(stored)
    }
    expect(structCount(doc, true)).toBe(loadCount(doc))
  }), { numRuns: 200 })
})

test.each([
  ["untrusted", { trusted: false }],
  ["a change made here", { trusted: true, local: () => true }],
] as const)("a field of shared types takes merges while its state, counted as at load, stays within its bound (%s)", (_, judged) => {
  const BOUND = 2_000
  const engine = yjsEngine<Y.Array<unknown>>("array", { maxStructs: BOUND })
  const field = engine.create()
  const writer = new Y.Doc()
  const outcomes: string[] = []
  // Bounded: at most 40 merges of 25 empty maps (100 at load each).
  for (let i = 0; i < 40; i++) {
    const before = Y.encodeStateVector(writer)
    writer.getArray("a").push(Array.from({ length: 25 }, () => new Y.Map()))
    const r = field.validate(Y.encodeStateAsUpdate(writer, before), { clientId: "writer", ...judged })
    outcomes.push(r.ok ? "ok" : (crdtReason(r.rejection) ?? "no reason"))
    if (!r.ok) break
    field.apply([r.update])
    // What the field holds, counted as a load counts it, is within the bound merges were held to.
    expect(countV2Structs(field.encode(), BOUND)).not.toBeUndefined()
  }
  expect(outcomes.at(-1)).toBe("crdt-too-large")
  expect(outcomes.filter((o) => o === "ok").length).toBeGreaterThanOrEqual(5)
  field.destroy()
})
