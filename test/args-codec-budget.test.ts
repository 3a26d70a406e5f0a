/**
 * Compact arguments (core/protocol/args-codec.ts) yield at most one array element or index key
 * per byte of input plus FREE_ITEMS, for the whole decode: an element that takes no bytes (a
 * Null, a Literal, an empty Struct) cannot be multiplied by nesting arrays. The encoder writes
 * a value that would go over the budget whole (form 1), so no legitimate value is refused.
 */
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { argsCodec, FREE_ITEMS } from "../core/protocol/args-codec.js"
import { CanonError } from "../core/errors.js"
import { nestedEmptyArrays } from "./support/hostile-frames.js"

const Grid = Schema.Struct({ rows: Schema.Array(Schema.Array(Schema.Null)) })
const Tags = Schema.Array(Schema.Array(Schema.Union([Schema.Literal("x"), Schema.Struct({})])))

test("nested arrays of elements without bytes: a few hundred bytes are refused fast, not decoded into millions of values", () => {
  const c = argsCodec(Schema.Array(Schema.Array(Schema.Null)).ast)
  const bytes = nestedEmptyArrays(200)
  expect(bytes.length).toBeLessThan(1000)
  const start = Date.now()
  expect(() => c.decode(bytes)).toThrow(CanonError)
  expect(() => c.decode(bytes)).toThrow(/over what/)
  // A bound against decoding the millions of values, not a speed target.
  expect(Date.now() - start).toBeLessThan(2_000)
})

test("the budget is shared by every array of the decode: one array may use it all, two may not", () => {
  const c = argsCodec(Schema.Array(Schema.Array(Schema.Null)).ast)
  // [[null x FREE_ITEMS]]: 1 + 1 + 3 bytes, FREE_ITEMS + 1 elements.
  const one = [new Array(FREE_ITEMS).fill(null)]
  const oneBytes = c.encode(one)
  expect(oneBytes[0]).toBe(0)
  expect(c.decode(oneBytes)).toEqual(one)
  // Two such arrays: over the budget of these few bytes, the encoder writes the value whole.
  const two = [new Array(FREE_ITEMS).fill(null), new Array(FREE_ITEMS).fill(null)]
  const twoBytes = c.encode(two)
  expect(twoBytes[0]).toBe(1)
  expect(c.decode(twoBytes)).toEqual(two)
  // The same shape in form 0, by hand: refused.
  const hand = new Uint8Array([0, 2, 0x80, 0x80, 0x04, 0x80, 0x80, 0x04])
  expect(() => c.decode(hand)).toThrow(/over what/)
})

test("the allowance is small: a command of 4 bytes cannot claim 65,540 literals (a submit carries 1000 such commands)", () => {
  const c = argsCodec(Schema.Struct({ marks: Schema.Array(Schema.Literal("x")) }).ast)
  // Form 0, then the array's count as a varint: 65,540.
  expect(() => c.decode(new Uint8Array([0, 0x84, 0x80, 0x04]))).toThrow(/over what/)
  // What an app sends of them still travels, compact while it fits the allowance.
  for (const n of [FREE_ITEMS, FREE_ITEMS * 4, 70_000]) {
    const v = { marks: new Array<"x">(n).fill("x") }
    const bytes = c.encode(v)
    expect([n, bytes[0]]).toEqual([n, n <= FREE_ITEMS ? 0 : 1])
    expect(c.decode(bytes)).toEqual(v)
  }
})

test("an object's index keys count too", () => {
  const c = argsCodec(Schema.Array(Schema.Record(Schema.String, Schema.Null)).ast)
  const v = [{ a: null, b: null }, {}, { c: null }]
  expect(c.decode(c.encode(v))).toEqual(v)
})

test("fuzz: every value of a schema with elements that take no bytes round-trips, and no decode yields more items than the budget", () => {
  const g = argsCodec(Grid.ast)
  const t = argsCodec(Tags.ast)
  const row = (n: number) => fc.array(fc.constant(null), { maxLength: n })
  fc.assert(fc.property(fc.array(row(40_000), { maxLength: 4 }), fc.array(fc.array(fc.oneof(fc.constant("x" as const), fc.constant({})), { maxLength: 2000 }), { maxLength: 50 }), (rows, tags) => {
    const gb = g.encode({ rows })
    expect(g.decode(gb)).toEqual({ rows })
    const items = rows.length + rows.reduce((n, r) => n + r.length, 0)
    if (gb[0] === 0) expect(items).toBeLessThanOrEqual(gb.length + FREE_ITEMS)
    expect(t.decode(t.encode(tags))).toEqual(tags)
  }), { numRuns: 40 })
})

test("fuzz: hostile bytes against a schema of empty elements decode or fail fast, never blow up", () => {
  const c = argsCodec(Schema.Array(Schema.Array(Schema.Array(Schema.Literal("z")))).ast)
  const varint = fc.oneof(fc.nat({ max: 127 }).map((n) => [n]), fc.nat({ max: 0x1fffff }).map((n) => [0x80 | (n & 0x7f), 0x80 | ((n >> 7) & 0x7f), n >> 14]))
  fc.assert(fc.property(fc.array(varint, { maxLength: 300 }), (parts) => {
    const bytes = new Uint8Array([0, ...parts.flat()])
    const start = Date.now()
    let out: unknown
    try {
      out = c.decode(bytes)
    } catch (e) {
      expect(e).toBeInstanceOf(CanonError)
    }
    // A bound against a runaway decode, not a speed target.
    expect(Date.now() - start).toBeLessThan(2_000)
    if (out !== undefined) expect(JSON.stringify(out).length / 4).toBeLessThanOrEqual(bytes.length + FREE_ITEMS)
  }), { numRuns: 200 })
})
