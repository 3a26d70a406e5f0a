/**
 * Random Yjs documents for the property tests of the struct counts (countV1Structs,
 * countV2Structs): every type and content Yjs writes (text with formats, format values and
 * embeds, maps and arrays of nested plain values, bigint and undefined inside them, array
 * deletions, nested types, XML, subdocuments).
 */
import fc from "fast-check"
import * as Y from "yjs"

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

export type Op =
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

const hasBigInt = (v: unknown): boolean =>
  typeof v === "bigint" || (typeof v === "object" && v !== null && !(v instanceof Uint8Array) && Object.values(v).some(hasBigInt))

/**
 * One edit of a random document. V1 writes embeds and format values as JSON, which has no
 * bigint (JSON.stringify throws): `version` 1 leaves it out of them.
 */
export const yjsOp = (version: 1 | 2): fc.Arbitrary<Op> => {
  const json = version === 1 ? value.filter((v) => !hasBigInt(v)) : value
  return fc.oneof(
    fc.record({ kind: fc.constant("text" as const), at: fc.nat(50), s: fc.string({ minLength: 1, maxLength: 6 }), format: fc.option(fc.constantFrom("bold", "em", "href"), { nil: undefined }) }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat(50), n: fc.integer({ min: 1, max: 5 }) }),
    fc.record({ kind: fc.constant("format" as const), at: fc.nat(50), n: fc.integer({ min: 1, max: 5 }), v: json }),
    fc.record({ kind: fc.constant("embed" as const), at: fc.nat(50), v: fc.dictionary(fc.string({ maxLength: 3 }), json, { maxKeys: 3, noNullPrototype: true }) }),
    fc.record({ kind: fc.constant("map" as const), key: fc.string({ maxLength: 3 }), v: element }),
    fc.record({ kind: fc.constant("array" as const), at: fc.nat(10), vs: fc.array(element, { minLength: 1, maxLength: 3 }) }),
    fc.record({ kind: fc.constant("arrayDelete" as const), at: fc.nat(10) }),
    fc.constant({ kind: "nested" as const }),
    fc.constant({ kind: "xml" as const }),
    fc.constant({ kind: "subdoc" as const }),
  )
}

/** Applies one edit to `doc` (positions clamped to what it has). */
export const apply = (doc: Y.Doc, o: Op): void => {
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
