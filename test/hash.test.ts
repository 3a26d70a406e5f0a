/**
 * State hashes: a function of the canonical bytes only, 16 lowercase hex characters, and
 * different for different states (a 64-bit hash: a collision among a few thousand samples
 * would mean a broken mix, not bad luck).
 */
import fc from "fast-check"
import { decodeCanonical, encodeCanonical } from "../core/canonical.js"
import { hashBytes, hashState } from "../core/hash.js"

const put = (o: Record<string, unknown>, k: string, v: unknown): void => {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

const { value: plainValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 12 }),
    fc.uint8Array({ maxLength: 12 }),
    tie("array"),
    tie("object"),
  ),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.array(fc.tuple(fc.string({ maxLength: 4 }), tie("value")), { maxLength: 5 }).map((entries) => {
    const o: Record<string, unknown> = {}
    for (const [k, v] of entries) put(o, k, v)
    return o
  }),
}))

/** Deep copy with every object's keys inserted in reverse order. */
const reversedCopy = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(reversedCopy)
  if (v instanceof Uint8Array) return v.slice()
  if (v === null || typeof v !== "object") return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v).reverse()) put(out, k, reversedCopy((v as Record<string, unknown>)[k]))
  return out
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

describe("hashState", () => {
  test("is 16 lowercase hex characters", () => {
    fc.assert(
      fc.property(plainValue, (v) => {
        expect(hashState(v)).toMatch(/^[0-9a-f]{16}$/)
      }),
      { seed: 42, numRuns: 500 },
    )
    for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 100]) expect(hashBytes(new Uint8Array(n))).toMatch(/^[0-9a-f]{16}$/)
  })

  test("the same state has the same hash: repeated, deep-copied, built in another key order", () => {
    fc.assert(
      fc.property(plainValue, (v) => {
        const h = hashState(v)
        expect(hashState(v)).toBe(h)
        expect(hashState(reversedCopy(v))).toBe(h)
        expect(hashBytes(encodeCanonical(v))).toBe(h)
      }),
      { seed: 42, numRuns: 500 },
    )
  })

  test("is a fixed function (the same on every peer and every run)", () => {
    // Pinned values: changing the hash breaks checkpoints between peers of different builds.
    expect(hashState(null)).toBe("87e3a1d2f28bb41d")
    expect(hashState({ a: 1, b: [true, "x"] })).toBe("c7c63e55b1622584")
    expect(hashState({ b: [true, "x"], a: 1 })).toBe("c7c63e55b1622584")
    expect(hashBytes(new Uint8Array([1, 2, 3, 4, 5]))).toBe("e1e72f5481b8f08e")
    expect(hashBytes(new Uint8Array(0))).toBe("3f7558b810dedabe")
    // Independent of how the bytes are held.
    const buf = new Uint8Array([9, 1, 2, 3, 4, 5, 9])
    expect(hashBytes(buf.subarray(1, 6))).toBe("e1e72f5481b8f08e")
  })

  test("different states have different hashes (random pairs)", () => {
    fc.assert(
      fc.property(plainValue, plainValue, (a, b) => {
        fc.pre(!sameBytes(encodeCanonical(a), encodeCanonical(b)))
        expect(hashState(a)).not.toBe(hashState(b))
      }),
      { seed: 42, numRuns: 2000 },
    )
  })

  test("states that differ by one small edit have different hashes", () => {
    const base = { items: { a: { title: "milk", done: false, order: 1 }, b: { title: "eggs", done: true, order: 2 } }, count: 2, log: ["x", "y"] }
    const variants: unknown[] = [
      base,
      { ...base, count: 3 },
      { ...base, count: -2 },
      { ...base, count: 2.5 },
      { ...base, log: ["x", "y", ""] },
      { ...base, log: ["y", "x"] },
      { ...base, log: ["x", "y "] },
      { ...base, items: { ...base.items, a: { ...base.items.a, done: true } } },
      { ...base, items: { ...base.items, a: { ...base.items.a, order: 0 } } },
      { ...base, items: { b: base.items.b } },
      { ...base, items: { ...base.items, c: null } },
      { ...base, extra: undefined, count: 2, other: 0 },
      { ...base, count: "2" },
      { ...base, count: null },
      { ...base, count: [2] },
      { ...base, count: -0 },
      { ...base, count: 0 },
      { items: base.items, count: 2 },
    ]
    const hashes = variants.map(hashState)
    expect(new Set(hashes).size).toBe(variants.length)
  })

  test("scalars that are easy to confuse have different hashes", () => {
    const values: unknown[] = [null, undefined, false, true, 0, -0, 1, -1, NaN, Infinity, -Infinity, "", "0", "null", [], {}, [null], [[]], [{}], { "": null },
      new Uint8Array(0), new Uint8Array(1), "\u0000", 2 ** 52, 2 ** 52 - 1, -(2 ** 52), 2 ** 53, 0.1]
    const hashes = values.map(hashState)
    expect(new Set(hashes).size).toBe(values.length)
  })
})

describe("hashBytes", () => {
  test("every byte string of length 0, 1 and 2 has its own hash", () => {
    const seen = new Set<string>()
    seen.add(hashBytes(new Uint8Array(0)))
    for (let a = 0; a < 256; a++) seen.add(hashBytes(new Uint8Array([a])))
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) seen.add(hashBytes(new Uint8Array([a, b])))
    expect(seen.size).toBe(1 + 256 + 65536)
  })

  test("runs of zeros of different lengths have different hashes", () => {
    const seen = new Set<string>()
    for (let n = 0; n < 600; n++) seen.add(hashBytes(new Uint8Array(n)))
    expect(seen.size).toBe(600)
  })

  test("every single-bit flip of a buffer changes the hash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 37 }), (bytes) => {
        const seen = new Set<string>([hashBytes(bytes)])
        for (let i = 0; i < bytes.length; i++) {
          for (let bit = 0; bit < 8; bit++) {
            const flipped = bytes.slice()
            flipped[i] = flipped[i]! ^ (1 << bit)
            seen.add(hashBytes(flipped))
          }
        }
        expect(seen.size).toBe(1 + bytes.length * 8)
      }),
      { seed: 42, numRuns: 200 },
    )
  })

  test("a trailing zero byte changes the hash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const longer = new Uint8Array(bytes.length + 1)
        longer.set(bytes)
        expect(hashBytes(longer)).not.toBe(hashBytes(bytes))
      }),
      { seed: 42, numRuns: 300 },
    )
  })

  test("the two 32-bit halves are not trivially related", () => {
    // If one lane were a function of the other, collisions would come at 2^16 samples.
    const halves = new Set<string>()
    const lows = new Set<string>()
    for (let i = 0; i < 20000; i++) {
      const h = hashBytes(encodeCanonical({ i }))
      halves.add(h.slice(0, 8))
      lows.add(h.slice(8))
    }
    // 20,000 random 32-bit values: a collision has probability ~5%; more than 3 means a weak mix.
    expect(halves.size).toBeGreaterThanOrEqual(20000 - 3)
    expect(lows.size).toBeGreaterThanOrEqual(20000 - 3)
  })
})

describe("hashes of values that read the same", () => {
  test("every NaN hashes as the one NaN, whatever its payload; -0 and 0 differ", () => {
    const payload = new DataView(new Uint8Array([0x7f, 0xf8, 0, 0, 0, 0, 0xbe, 0xef]).buffer).getFloat64(0)
    const negative = new DataView(new Uint8Array([0xff, 0xf8, 0, 0, 0, 0, 0, 0]).buffer).getFloat64(0)
    expect(hashState({ x: payload })).toBe(hashState({ x: NaN }))
    expect(hashState([negative, payload])).toBe(hashState([NaN, NaN]))
    expect(hashState(0)).not.toBe(hashState(-0))
  })

  test("a string starting with U+FEFF hashes differently from the same string without it, and survives a round trip", () => {
    expect(hashState("\uFEFFa")).not.toBe(hashState("a"))
    expect(hashState(decodeCanonical(encodeCanonical({ s: "\uFEFFa" })))).toBe(hashState({ s: "\uFEFFa" }))
  })
})
