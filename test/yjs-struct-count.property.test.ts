/**
 * countV1Structs (adapters/yjs/integrable.ts) reads a V1 update's structs without decoding
 * it, so every Yjs route can bound the decoded work first. It must agree with
 * `Y.decodeUpdate` (structs, a shared type weighing 4, the delete set's ranges told apart; a subdocument refused) on every update Yjs makes: random documents of every type and content
 * (test/support/yjs-random-docs.ts), whole and as incremental updates.
 */
import fc from "fast-check"
import * as Y from "yjs"
import { countV1Structs } from "../adapters/yjs/integrable.js"
import { apply, yjsOp } from "./support/yjs-random-docs.js"

const op = yjsOp(1)

test("countV1Structs agrees with Y.decodeUpdate on whole and incremental updates", () => {
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 2 ** 30 }), (ops, clientID) => {
    const doc = new Y.Doc()
    doc.clientID = clientID
    const updates: Uint8Array[] = []
    doc.on("update", (u: Uint8Array) => updates.push(u))
    for (const o of ops) apply(doc, o)
    for (const u of [...updates, Y.encodeStateAsUpdate(doc)]) {
      const decoded = Y.decodeUpdate(u) as unknown as { structs: Array<{ content?: unknown }>; ds: { clients: Map<number, unknown[]> } }
      const structs = decoded.structs
      const ranges = [...decoded.ds.clients.values()].reduce((n, rs) => n + rs.length, 0)
      // A subdocument is refused before decoding; a shared type weighs 4.
      if (structs.some((x) => x.content instanceof Y.ContentDoc)) {
        expect(countV1Structs(u, 1 << 20)).toBe("Yjs subdocuments are not supported.")
        continue
      }
      // The delete set's ranges are told apart (the sender's work), not counted.
      const weight = structs.length + 3 * structs.filter((x) => x.content instanceof Y.ContentType).length
      const seen = { deleteRanges: -1 }
      expect(countV1Structs(u, 1 << 20, seen)).toBe(weight)
      expect(seen.deleteRanges).toBe(ranges)
      if (weight > 0) expect(countV1Structs(u, weight - 1)).toBeUndefined()
    }
  }), { numRuns: 200 })
})

test("a flood of 2-byte GC structs is counted without decoding, and garbage is not an update", () => {
  // One client, 200,000 GC structs of length 1: what an attacker sends, 2 bytes each.
  const n = 200_000
  const bytes = [1, ...varuint(n), 7, 0, ...new Array<number>(n).fill(0).flatMap(() => [0, 1]), 0]
  const update = new Uint8Array(bytes)
  expect(countV1Structs(update, 1 << 20)).toBe(n)
  expect(countV1Structs(update, n - 1)).toBeUndefined()
  expect(typeof countV1Structs(new Uint8Array([1, 1, 7, 0, 31]), 10)).toBe("string")
  expect(typeof countV1Structs(new Uint8Array([1, 1]), 10)).toBe("string")
})

function varuint(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

/** A plain value whose object keys are drawn from `keys` (own keys, "__proto__" included, as JSON.parse makes them). */
const keyed = (keys: fc.Arbitrary<string>): fc.Arbitrary<unknown> => fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null), fc.integer(), fc.string({ maxLength: 3 }),
    fc.array(tie("v"), { maxLength: 3 }),
    fc.array(fc.tuple(keys, tie("v")), { maxLength: 3 }).map((entries) => {
      const o: Record<string, unknown> = {}
      for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
      return o
    }),
  ),
})).v

const hasProtoKey = (v: unknown): boolean =>
  Array.isArray(v) ? v.some(hasProtoKey) : typeof v === "object" && v !== null && Object.keys(v).some((k) => k === "__proto__" || hasProtoKey((v as Record<string, unknown>)[k]))

test("a key \"__proto__\" is refused wherever Yjs reads a key by assignment (map keys, keys inside values, text format names, XML attributes), and only there", () => {
  // Near misses too. ("constructor" is left out: Yjs's map.set reads value.constructor to pick the content type.)
  const key = fc.constantFrom("__proto__", "a", "proto", "__proto", "__proto__ ", "toString")
  fc.assert(fc.property(fc.constantFrom("map", "value", "format", "xml"), key, keyed(key), (where, k, v) => {
    const doc = new Y.Doc()
    if (where === "map") doc.getMap("m").set(k, 1)
    else if (where === "value") doc.getMap("m").set("k", v)
    else if (where === "format") doc.getText("t").insert(0, "x", Object.defineProperty({}, k, { value: true, enumerable: true }))
    else {
      const p = new Y.XmlElement("p")
      doc.getXmlFragment("x").push([p])
      p.setAttribute(k, "v")
    }
    const u = Y.encodeStateAsUpdate(doc)
    const refused = where === "value" ? hasProtoKey(v) : k === "__proto__"
    const got = countV1Structs(u, 1 << 20)
    if (refused) expect(got).toEqual(expect.stringMatching(/^The key "__proto__" is refused \(/))
    else expect(typeof got).toBe("number")
  }), { numRuns: 300 })
})
