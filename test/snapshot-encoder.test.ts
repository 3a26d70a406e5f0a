/** Pieces of a state's canonical encoding, and its hash over pieces, equal the one-shot ones. */
import fc from "fast-check"
import { encodeCanonical, hashBytes } from "../core/index.js"
import { StateEncoder } from "../core/snapshot/state-encoder.js"
import { StreamHash } from "../core/snapshot/stream-hash.js"

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

const plain = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true }), fc.string(), fc.uint8Array({ maxLength: 8 }),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie("value"), { maxKeys: 5 }),
  ),
}))

test("StateEncoder pieces concatenate to encodeCanonical, whatever the budget", () => {
  fc.assert(fc.property(plain.value, fc.integer({ min: 1, max: 64 }), (v, budget) => {
    const enc = new StateEncoder(v)
    const parts: Uint8Array[] = []
    for (let p = enc.next(budget); p !== undefined; p = enc.next(budget)) parts.push(p)
    expect(enc.done).toBe(true)
    expect(concat(parts)).toEqual(encodeCanonical(v))
    expect(enc.produced).toBe(encodeCanonical(v).length)
  }), { numRuns: 500 })
})

test("StateEncoder encodes the resolved version of each container", () => {
  const live = { a: { n: 2 }, b: [1, 2, 3] }
  const asOfBefore = new Map<object, object>([[live.a, { n: 1 }], [live.b, [1]]])
  const enc = new StateEncoder(live, (c) => asOfBefore.get(c) ?? c)
  const parts: Uint8Array[] = []
  for (let p = enc.next(4); p !== undefined; p = enc.next(4)) parts.push(p)
  expect(concat(parts)).toEqual(encodeCanonical({ a: { n: 1 }, b: [1] }))
})

test("StreamHash over any split equals hashBytes of the whole", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 6 }), (bytes, cuts) => {
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
    const h = new StreamHash()
    let from = 0
    for (const p of [...points, bytes.length]) {
      h.update(bytes.subarray(from, p))
      from = p
    }
    expect(h.digest()).toBe(hashBytes(bytes))
    expect(h.length).toBe(bytes.length)
  }), { numRuns: 1000 })
})
