/**
 * The value-depth bound (MAX_VALUE_DEPTH, adapters/yjs/integrable.ts) is read from the bytes
 * without decoding, so it must agree with the value itself: for random values of random depth
 * around the bound (arrays and objects mixed, strings and keys full of brackets, quotes and
 * backslashes), as a ContentAny in V1 and V2 and as V1 JSON content, an update is accepted
 * exactly when the value nests at most MAX_VALUE_DEPTH deep, and what is accepted decodes and
 * encodes again.
 */
import fc from "fast-check"
import * as Y from "yjs"
import * as encoding from "lib0/encoding"
import { MAX_VALUE_DEPTH, countV1Structs, countV2Structs } from "../adapters/yjs/integrable.js"

const depthOf = (v: unknown): number => {
  let deepest = 0
  const stack: Array<[unknown, number]> = [[v, 0]]
  while (stack.length > 0) {
    const [x, d] = stack.pop()!
    if (x === null || typeof x !== "object") continue
    deepest = Math.max(deepest, d + 1)
    for (const c of Object.values(x)) stack.push([c, d + 1])
  }
  return deepest
}

/** A V1 update of one JSON content struct in root "a". */
const jsonContent = (json: string): Uint8Array => {
  const e = encoding.createEncoder()
  for (const n of [1, 1, 9, 0]) encoding.writeVarUint(e, n) // clients, structs, client, clock
  encoding.writeUint8(e, 2)
  encoding.writeVarUint(e, 1)
  encoding.writeVarString(e, "a")
  encoding.writeVarUint(e, 1)
  encoding.writeVarString(e, json)
  encoding.writeVarUint(e, 0)
  return encoding.toUint8Array(e)
}

const tricky = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', "\\", "a", "é", "😀"), maxLength: 6 })

const value = fc
  .record({
    depth: fc.oneof(fc.integer({ min: MAX_VALUE_DEPTH - 2, max: MAX_VALUE_DEPTH + 2 }), fc.integer({ min: 0, max: MAX_VALUE_DEPTH + 100 })),
    kinds: fc.array(fc.boolean(), { minLength: MAX_VALUE_DEPTH + 100, maxLength: MAX_VALUE_DEPTH + 100 }),
    text: tricky,
    key: tricky,
  })
  .map(({ depth, kinds, text, key }) => {
    let v: unknown = text
    for (let i = 0; i < depth; i++) v = kinds[i] ? [text, v] : { [`k${key}`]: v, [`j${key}`]: text }
    return v
  })

test("countV1Structs and countV2Structs take a value exactly when it nests at most MAX_VALUE_DEPTH deep", () => {
  fc.assert(
    fc.property(value, fc.integer({ min: 10, max: 2 ** 32 - 1 }), (v, clientID) => {
      const fits = depthOf(v) <= MAX_VALUE_DEPTH
      const doc = new Y.Doc()
      doc.clientID = clientID // drawn, not Yjs's random one: a seed replays (9 is jsonContent's)
      doc.getMap("m").set("k", v)
      const v1 = Y.encodeStateAsUpdate(doc)
      const v2 = Y.encodeStateAsUpdateV2(doc)
      const json = jsonContent(JSON.stringify(v))
      for (const counted of [countV1Structs(v1, 1e6), countV2Structs(v2, 1e6), countV1Structs(json, 1e6)]) {
        expect(typeof counted === "number").toBe(fits)
      }
      if (fits) {
        const again = new Y.Doc()
        Y.applyUpdate(again, json)
        Y.applyUpdate(again, v1)
        expect(again.getMap("m").get("k")).toEqual(v)
        expect(() => Y.encodeStateAsUpdateV2(again)).not.toThrow()
      }
    }),
    { numRuns: 150 },
  )
})
