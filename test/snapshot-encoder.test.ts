/** Pieces of a state's canonical encoding, and its hash over pieces, equal the one-shot ones. */
import fc from "fast-check"
import { encodeCanonical } from "../core/index.js"
import { hashBytes } from "../core/internal.js"
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

test("an object with many keys has them sorted a slice per piece, and still encodes canonically", () => {
  fc.assert(fc.property(fc.integer({ min: 36_000, max: 45_000 }), fc.integer(), (n, seed) => {
    // Keys in scrambled order, with non-ASCII ones (UTF-16 order), some undefined values, and
    // some keys written after the sort began (the as-of version must win).
    const obj: Record<string, unknown> = {}
    let x = seed | 0
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) | 0
      const k = `${(x >>> 8).toString(36)}${i % 7 === 0 ? "\u00e9\ud83d\ude00" : ""}${i}`
      obj[k] = i % 11 === 0 ? undefined : { i }
    }
    const asOf: Record<string, unknown> = { ...obj }
    const state = { big: obj, small: { b: 1, a: 2 } }
    const enc = new StateEncoder(state, (c) => (c === obj ? asOf : c))
    const parts: Uint8Array[] = []
    let calls = 0
    for (let p = enc.next(1 << 30); p !== undefined; p = enc.next(1 << 30)) {
      parts.push(p)
      if (calls++ === 1) obj.zzz = "written after the freeze"
    }
    // Not one call: the sort gave the caller slices back.
    expect(calls).toBeGreaterThan(2)
    // Compared as Buffers: toEqual on a megabyte array element by element takes seconds.
    expect(Buffer.from(concat(parts)).equals(Buffer.from(encodeCanonical({ big: asOf, small: { b: 1, a: 2 } })))).toBe(true)
  }), { numRuns: 3 })
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
