/**
 * The three ways to the hub's estimate of a machine state's memory (core/state/heap-estimate.ts)
 * agree as upper bounds: weighed from its canonical bytes before decoding, it is at least what
 * the state weighs; and what the state model adds up as commands write (grownOf)
 * is at least what the state grew by, whatever the writes (sets, pushes, splices, sorts,
 * deletes, swaps of text for containers or byte strings). The hub's memory gauge adds up the
 * second between counts of the first: were it less, a client could hold more than it counts.
 */
import fc from "fast-check"
import { decodeCanonical, encodeCanonical } from "../core/canonical.js"
import { JournaledState, grownOf } from "../core/journal.js"
import { heapBytes, heapOfEncoded } from "../core/state/heap-estimate.js"

/** Plain values a state holds: text (Latin-1 or not), numbers, byte strings, lists and records, a few levels deep. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.string(), fc.string({ unit: "grapheme" }), fc.double({ noNaN: true }), fc.integer(), fc.boolean(), fc.constant(null),
    fc.uint8Array({ maxLength: 4 }),
    fc.array(tie("v"), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie("v"), { maxKeys: 5 }),
  ),
})).v

type Op =
  | { readonly kind: "set"; readonly key: string; readonly value: unknown }
  | { readonly kind: "delete"; readonly key: string }
  | { readonly kind: "push"; readonly values: unknown[] }
  | { readonly kind: "splice"; readonly start: number; readonly count: number; readonly values: unknown[] }
  | { readonly kind: "sort" }
  | { readonly kind: "pushInto"; readonly key: string; readonly value: unknown }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), key: fc.constantFrom("a", "b", "c"), value }),
  fc.record({ kind: fc.constant("delete" as const), key: fc.constantFrom("a", "b", "c") }),
  fc.record({ kind: fc.constant("push" as const), values: fc.array(value, { maxLength: 4 }) }),
  fc.record({ kind: fc.constant("splice" as const), start: fc.nat(6), count: fc.nat(3), values: fc.array(value, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant("sort" as const) }),
  fc.record({ kind: fc.constant("pushInto" as const), key: fc.constantFrom("a", "b", "c"), value }),
)

const apply = (d: { map: Record<string, unknown>; list: unknown[] }, o: Op): void => {
  if (o.kind === "set") d.map[o.key] = o.value
  else if (o.kind === "delete") delete d.map[o.key]
  else if (o.kind === "push") d.list.push(...o.values)
  else if (o.kind === "splice") d.list.splice(o.start, o.count, ...o.values)
  else if (o.kind === "sort") d.list.sort((x, y) => (typeof x < typeof y ? -1 : typeof x > typeof y ? 1 : 0))
  else {
    const at = d.map[o.key]
    if (Array.isArray(at)) at.push(o.value)
  }
}

test("weighed from its canonical bytes, a value weighs at least what it does decoded, in one piece or in many", async () => {
  await fc.assert(fc.asyncProperty(value, async (v) => {
    const bytes = encodeCanonical(v)
    const whole = await heapOfEncoded(bytes)
    expect(whole).toBeGreaterThanOrEqual(heapBytes(decodeCanonical(bytes)))
    let pauses = 0
    expect(await heapOfEncoded(bytes, () => (++pauses % 2 === 0 ? Promise.resolve() : undefined))).toBe(whole)
  }), { numRuns: 1_000 })
  // Pieces of 2,048 values: a large state pauses.
  const big = encodeCanonical({ items: Array.from({ length: 10_000 }, (_, i) => ({ n: i })) })
  let pauses = 0
  expect(await heapOfEncoded(big, () => void pauses++)).toBe(await heapOfEncoded(big))
  expect(pauses).toBeGreaterThanOrEqual(9)
})

test("what commands write adds up to at least what the state grows by, from any state", () => {
  fc.assert(fc.property(value, value, fc.array(fc.array(op, { maxLength: 4 }), { maxLength: 6 }), (m, l, commands) => {
    // The state as a hub loads it: decoded, counted whole once.
    const initial = decodeCanonical(encodeCanonical({ map: { a: m, b: Array.isArray(l) ? l : [l] }, list: Array.isArray(l) ? l : [] })) as { map: Record<string, unknown>; list: unknown[] }
    const js = new JournaledState(initial)
    const counted = heapBytes(js.root)
    const grownAtLoad = grownOf(js)
    for (const ops of commands) {
      js.begin()
      const d = js.draft()
      for (const o of ops) apply(d, o)
      js.end()
      expect(counted + grownOf(js) - grownAtLoad).toBeGreaterThanOrEqual(heapBytes(js.root))
    }
  }), { numRuns: 1_000 })
})
