/**
 * countV2Structs (adapters/yjs/integrable.ts) reads a V2 update's structs without decoding it,
 * so a CRDT field's stored or snapshot state is bounded before Yjs decodes it. It must agree
 * with `Y.decodeUpdateV2` (structs, a shared type weighing 4; a subdocument refused) on every
 * update Yjs makes: random documents of every type and content, whole and incremental, with
 * and without garbage collection; and refuse a forged update whose run-length columns claim
 * more structs than the bound, before reading them.
 */
import fc from "fast-check"
import * as Y from "yjs"
import * as encoding from "lib0/encoding"
import { countV2Structs } from "../adapters/yjs/integrable.js"
import { v2Bomb } from "./support/yjs-v2-bomb.js"

/** Plain values as Yjs stores them (lib0 any): nested objects and arrays included. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null), fc.constant(undefined), fc.boolean(), fc.integer(), fc.double({ noNaN: true }), fc.string(), fc.bigInt(),
    fc.uint8Array({ maxLength: 8 }),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie("v"), { maxKeys: 4, noNullPrototype: true }),
  ),
})).v

/** What Yjs takes as an element or a map value (undefined and bigint only inside one). */
const element = value.filter((v) => v !== undefined && typeof v !== "bigint")

type Op =
  | { readonly kind: "text"; readonly at: number; readonly s: string; readonly format?: string }
  | { readonly kind: "delete"; readonly at: number; readonly n: number }
  | { readonly kind: "format"; readonly at: number; readonly n: number; readonly v: unknown }
  | { readonly kind: "embed"; readonly at: number; readonly v: unknown }
  | { readonly kind: "map"; readonly key: string; readonly v: unknown }
  | { readonly kind: "array"; readonly at: number; readonly vs: unknown[] }
  | { readonly kind: "arrayDelete"; readonly at: number }
  | { readonly kind: "nested" }
  | { readonly kind: "xml" }
  | { readonly kind: "subdoc" }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("text" as const), at: fc.nat(50), s: fc.string({ minLength: 1, maxLength: 6 }), format: fc.option(fc.constantFrom("bold", "em", "href"), { nil: undefined }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(50), n: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant("format" as const), at: fc.nat(50), n: fc.integer({ min: 1, max: 5 }), v: value }),
  fc.record({ kind: fc.constant("embed" as const), at: fc.nat(50), v: fc.dictionary(fc.string({ maxLength: 3 }), value, { maxKeys: 3, noNullPrototype: true }) }),
  fc.record({ kind: fc.constant("map" as const), key: fc.string({ maxLength: 3 }), v: element }),
  fc.record({ kind: fc.constant("array" as const), at: fc.nat(10), vs: fc.array(element, { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant("arrayDelete" as const), at: fc.nat(10) }),
  fc.constant({ kind: "nested" as const }),
  fc.constant({ kind: "xml" as const }),
  fc.constant({ kind: "subdoc" as const }),
)

const apply = (doc: Y.Doc, o: Op): void => {
  const text = doc.getText("t")
  const at = (n: number) => Math.min(n, text.length)
  const array = doc.getArray("a")
  switch (o.kind) {
    case "text": return o.format === undefined ? text.insert(at(o.at), o.s) : text.insert(at(o.at), o.s, { [o.format]: true })
    case "delete": { const from = at(o.at); return text.delete(from, Math.min(o.n, text.length - from)) }
    case "format": { const from = at(o.at); return text.format(from, Math.min(o.n, text.length - from), { color: o.v ?? null }) }
    case "embed": return text.insertEmbed(at(o.at), o.v as object)
    case "map": { doc.getMap("m").set(o.key, o.v); return }
    case "array": return array.insert(Math.min(o.at, array.length), o.vs)
    case "arrayDelete": return void (array.length > 0 && array.delete(Math.min(o.at, array.length - 1), 1))
    case "nested": { const inner = new Y.Map<unknown>(); doc.getMap("m").set("inner", inner); inner.set("k", new Y.Array()); return }
    case "xml": { const el = new Y.XmlElement("p"); el.setAttribute("class", "c"); el.insert(0, [new Y.XmlText("hi"), new Y.XmlHook("h") as unknown as Y.XmlText]); doc.getXmlFragment("x").push([el]); return }
    case "subdoc": { doc.getMap("docs").set("d", new Y.Doc()); return }
  }
}

type Decoded = { structs: Array<{ content?: unknown }> }

/** What countV2Structs must say of `u`, from Yjs's own decoding. */
const expected = (u: Uint8Array): number | string => {
  const structs = (Y.decodeUpdateV2(u) as unknown as Decoded).structs
  if (structs.some((x) => x.content instanceof Y.ContentDoc)) return "Yjs subdocuments are not supported."
  return structs.length + 3 * structs.filter((x) => x.content instanceof Y.ContentType).length
}

test("countV2Structs agrees with Y.decodeUpdateV2 on whole and incremental V2 updates", () => {
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 2 ** 30 }), fc.boolean(), (ops, clientID, gc) => {
    // Two writers, so structs of one client interleave with the other's and stay unmerged.
    const doc = new Y.Doc({ gc })
    doc.clientID = clientID
    const other = new Y.Doc({ gc })
    other.clientID = clientID + 1
    const updates: Uint8Array[] = []
    doc.on("updateV2", (u: Uint8Array) => updates.push(u))
    for (const [i, o] of ops.entries()) {
      if (i % 3 === 2) {
        apply(other, o)
        Y.applyUpdateV2(doc, Y.encodeStateAsUpdateV2(other, Y.encodeStateVector(doc)))
      } else apply(doc, o)
    }
    for (const u of [...updates, Y.encodeStateAsUpdateV2(doc), Y.encodeStateAsUpdateV2(doc, Y.encodeStateVector(other))]) {
      const want = expected(u)
      expect(countV2Structs(u, 1 << 20)).toBe(want)
      if (typeof want === "number" && want > 0) expect(countV2Structs(u, want - 1)).toBeUndefined()
    }
  }), { numRuns: 300 })
})

test("a V2 update whose run-length columns claim 10^8 structs is refused before any is read", () => {
  const bomb = v2Bomb(1e8)
  expect(bomb.length).toBeLessThan(64)
  const t0 = performance.now()
  expect(countV2Structs(bomb, 1 << 22)).toBeUndefined()
  expect(performance.now() - t0).toBeLessThan(50)
  // Under the bound it is counted as Yjs would decode it (one run, read without an object per struct).
  expect(countV2Structs(v2Bomb(1000), 1 << 22)).toBe((Y.decodeUpdateV2(v2Bomb(1000)) as unknown as Decoded).structs.length)
})

test("bytes that are not a V2 update, or columns that end where Yjs would read past them, are refused with a sentence", () => {
  const notV2 = (u: Uint8Array) => expect(countV2Structs(u, 1 << 20)).toEqual(expect.stringMatching(/^The bytes are not a Yjs V2 update \(/))
  notV2(new Uint8Array([1, 2, 3]))
  notV2(new Uint8Array(0))
  // A truncated honest update.
  const doc = new Y.Doc()
  doc.getText("t").insert(0, "hello", { bold: true })
  const u = Y.encodeStateAsUpdateV2(doc)
  notV2(u.subarray(0, u.length - 4))
  // An empty info column (lib0 reads `undefined` forever, which Yjs takes for GC structs).
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  for (let i = 0; i < 9; i++) encoding.writeVarUint8Array(e, new Uint8Array(0))
  for (const x of [1, 5, 1, 0]) encoding.writeVarUint(e, x)
  notV2(encoding.toUint8Array(e))
})
