/**
 * Schema-driven argument encoding (core/protocol/args-codec.ts, protocol 2): every value
 * round-trips, a union writes the index of the first member whose shape the value has, and
 * a value outside the schema's shape travels whole as a canonical value.
 */
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { LARGE_ARGS, argsCodec } from "../core/protocol/args-codec.js"
import { decodeCanonical, encodeCanonical } from "../core/canonical.js"

const Shape = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("a"), n: Schema.Number }),
  Schema.Struct({ kind: Schema.Literal("b"), s: Schema.String, tags: Schema.optional(Schema.Array(Schema.String)) }),
  Schema.Null,
])
const Nested = Schema.Struct({
  x: Schema.Union([Schema.String, Schema.Number, Schema.Array(Schema.Union([Schema.Boolean, Schema.Struct({ y: Schema.Number })]))]),
  more: Schema.Record(Schema.String, Schema.Union([Schema.Number, Schema.String])),
})

test("a union writes the index of the first member whose shape the value has", () => {
  const c = argsCodec(Shape.ast)
  // form 0, member 1, optional bitmap 0, then "b" is a literal (nothing), s = "hi"
  expect([...c.encode({ kind: "b", s: "hi" })]).toEqual([0, 1, 0, 2, 0x68, 0x69])
  expect([...c.encode(null)]).toEqual([0, 2])
  expect(c.decode(c.encode({ kind: "a", n: 3 }))).toEqual({ kind: "a", n: 3 })
})

test("a member that fails deep inside is abandoned whole: nothing it wrote stays", () => {
  const c = argsCodec(Nested.ast)
  const v = { x: [true, { y: 2 }, false], more: { k: "v", j: 1 } }
  const bytes = c.encode(v)
  expect(bytes[0]).toBe(0)
  expect(c.decode(bytes)).toEqual(v)
})

test("a value outside the schema's shape travels whole, as a canonical value", () => {
  const c = argsCodec(Shape.ast)
  const v = { kind: "c", other: [1, 2] }
  const bytes = c.encode(v)
  expect(bytes[0]).toBe(1)
  expect(decodeCanonical(bytes.subarray(1))).toEqual(v)
  expect(c.decode(bytes)).toEqual(v)
})

test("large arguments whose compact form is larger than their canonical one travel as the canonical value", () => {
  // Each boolean: two union indexes and the value compact, one byte canonical.
  const c = argsCodec(Schema.Array(Schema.Union([Schema.Union([Schema.Boolean, Schema.Number]), Schema.String])).ast)
  const small = Array.from({ length: 1_000 }, (_, i) => i % 2 === 0)
  expect(c.encode(small)[0]).toBe(0)
  const large = Array.from({ length: 100_000 }, (_, i) => i % 2 === 0)
  const bytes = c.encode(large)
  expect(bytes[0]).toBe(1)
  expect(bytes.length).toBeLessThan(100_010)
  expect(c.decode(bytes)).toEqual(large)
})

test("compact arguments are never larger than the value form past LARGE_ARGS (what cuts submits and pages by size relies on)", () => {
  const c = argsCodec(Schema.Array(Schema.Union([Schema.Union([Schema.Boolean, Schema.Number]), Schema.String])).ast)
  const item = fc.oneof(fc.boolean(), fc.integer({ min: -1000, max: 1000 }), fc.string({ maxLength: 3 }))
  fc.assert(fc.property(fc.integer({ min: 0, max: 60_000 }), item, (n, x) => {
    const v = Array.from({ length: n }, (_, i) => (i % 7 === 0 ? x : i % 2 === 0))
    const bytes = c.encode(v)
    expect(bytes.length).toBeLessThanOrEqual(Math.max(LARGE_ARGS, encodeCanonical(v).length + 1))
    expect(c.decode(bytes)).toEqual(v)
  }), { numRuns: 25 })
})

test("every value round-trips, in or out of the schema's shape", () => {
  const c = argsCodec(Nested.ast)
  const leaf = fc.oneof(fc.string(), fc.double({ noNaN: true }), fc.boolean(), fc.record({ y: fc.double({ noNaN: true }) }))
  const x = fc.oneof(fc.string(), fc.double({ noNaN: true }), fc.array(leaf, { maxLength: 5 }), fc.constant(null))
  const more = fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()), { maxKeys: 4 })
  fc.assert(fc.property(x, more, (x, more) => {
    const v = { x, more }
    expect(c.decode(c.encode(v))).toEqual(v)
  }), { numRuns: 300 })
})

enum Level { Low, Mid, High }
const Pinned = Schema.Struct({
  lit: Schema.Literals([0, 1, "a", true]),
  level: Schema.Enum(Level),
  either: Schema.Union([Schema.Literal(0), Schema.Number]),
  items: Schema.Array(Schema.Union([Schema.Literal(-1), Schema.Literal(0), Schema.String])),
})

test("the round trip is the identity on the canonical bytes: values a schema's === takes for a literal or an enum member (-0 for 0) come back as themselves", () => {
  // -0 passes `Schema.Literal(0)` and `Schema.Enum` (they compare with ===) but the canonical
  // form, and so the hub's state and hash, tell it from 0: written as the literal, a protocol 2
  // reader decoded +0 where the hub and protocol 1 readers had -0 (a desync at every checkpoint).
  const c = argsCodec(Pinned.ast)
  const num = fc.oneof(fc.constantFrom(0, -0, 1, 2, -1), fc.double())
  const v = fc.record({
    lit: fc.oneof(fc.constantFrom<unknown>(0, -0, 1, "a", true), num),
    level: fc.oneof(fc.constantFrom(Level.Low, -0, Level.Mid, Level.High), num),
    either: num,
    items: fc.array(fc.oneof(num, fc.constantFrom("x", "")), { maxLength: 4 }),
  })
  fc.assert(fc.property(v, (v) => {
    expect([...encodeCanonical(c.decode(c.encode(v)))]).toEqual([...encodeCanonical(v)])
  }), { numRuns: 500 })
  // The case itself: the whole value travels (form 1) and comes back with -0.
  const back = c.decode(c.encode({ lit: -0, level: 1, either: 0, items: [] })) as { lit: number }
  expect(Object.is(back.lit, -0)).toBe(true)
})
