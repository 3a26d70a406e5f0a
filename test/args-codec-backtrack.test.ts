/**
 * Encoding compact arguments (core/protocol/args-codec.ts) takes work linear in the value,
 * whatever the schema. A union tries its members in turn, and the work of a member that fails
 * deep inside is lost: with a recursive union whose members differ after their recursive field,
 * each level encoded its subtree twice (2^depth: a 492-byte command of depth 20 held a hub 6.6 s
 * at each fan-out to a protocol-2+ follower). Work is counted, not timed: reads of the value's
 * properties (a Proxy; the same count on any version of the encoder) and the encoder's own count.
 */
import * as Schema from "effect/Schema"
import fc from "fast-check"
import * as codec from "../core/protocol/args-codec.js"
import { encodeCanonical } from "../core/canonical.js"

// Members told apart by a type after the children (no literal, no key): only the work bound holds them.
const Tree: Schema.Codec<any> = Schema.Union([
  Schema.Struct({ kids: Schema.Array(Schema.suspend((): Schema.Codec<any> => Tree)), n: Schema.Number }),
  Schema.Struct({ kids: Schema.Array(Schema.suspend((): Schema.Codec<any> => Tree)), n: Schema.String }),
])
const tree = codec.argsCodec(Schema.Struct({ tree: Tree }).ast)

/** The arguments: a chain of `depth` nodes `{ kids: [below], ...kind }` above `leaf` (by default one of them). */
const chain = (depth: number, kind: object, leaf: object = { kids: [], ...kind }): object => {
  let v = leaf
  for (let i = 0; i < depth; i++) v = { kids: [v], ...kind }
  return { tree: v }
}

/** The reads of `v`'s properties while `f` runs on a copy that counts them. */
const readsOf = (v: unknown, f: (watched: unknown) => void): number => {
  let reads = 0
  const watch = (x: unknown): unknown =>
    typeof x !== "object" || x === null
      ? x
      : new Proxy(Array.isArray(x) ? x.map(watch) : Object.fromEntries(Object.entries(x).map(([k, y]) => [k, watch(y)])), {
        get: (t, k, r) => (reads++, Reflect.get(t, k, r)),
      })
  f(watch(v))
  return reads
}

test("members a literal or a key cannot tell apart: past its bound of work the encoder writes the value whole (form 1), which decodes", () => {
  // Before: about 90 k reads at depth 12, doubling with each level.
  for (const depth of [12, 20, 60, 120]) {
    const v = chain(depth, { n: "x" })
    let bytes: Uint8Array = new Uint8Array()
    const reads = readsOf(v, (w) => (bytes = tree.encode(w)))
    expect({ depth, reads: reads <= 8192 + 40 * depth }).toEqual({ depth, reads: true })
    expect(codec.spent).toBeLessThanOrEqual(4096 + 16 * bytes.length)
    expect(bytes[0]).toBe(1)
    expect(tree.decode(bytes)).toEqual(v)
  }
  // A shallow one still fits in the work it may spend: compact.
  const shallow = chain(3, { n: "x" })
  const bytes = tree.encode(shallow)
  expect(bytes[0]).toBe(0)
  expect(tree.decode(bytes)).toEqual(shallow)
})

test("a union recursing into itself without taking any of the value is bounded too", () => {
  const Self: Schema.Codec<any> = Schema.Union([
    Schema.suspend((): Schema.Codec<any> => Self),
    Schema.suspend((): Schema.Codec<any> => Self),
    Schema.Literal("x"),
  ])
  const c = codec.argsCodec(Self.ast)
  // Every union takes its first member down to the depth bound, where "x" fits the literal.
  const x = c.encode("x")
  expect(x[0]).toBe(0)
  expect(c.decode(x)).toBe("x")
  // 5 fits nowhere: at the depth bound each union has two members left to try (2^depth before).
  const bytes = c.encode(5)
  expect(codec.spent).toBeLessThan(100_000)
  expect(bytes[0]).toBe(1)
  expect(c.decode(bytes)).toBe(5)
})

test("fuzz: trees round-trip in work linear in their size", () => {
  // A node of at most `levels` levels: `{ kids, ...kind }`.
  const node = (kind: fc.Arbitrary<object>, levels: number): fc.Arbitrary<object> =>
    fc.tuple(levels > 1 ? fc.array(node(kind, levels - 1), { maxLength: 3 }) : fc.constant([]), kind).map(([kids, k]) => ({ kids, ...k }))
  const trees = node(fc.oneof(fc.integer().map((n) => ({ n })), fc.string({ maxLength: 4 }).map((n) => ({ n }))), 5)
  fc.assert(fc.property(trees, fc.nat({ max: 12 }), (t, deep) => {
    // Under a chain, so that deep trees come up too.
    const tv = chain(deep, { n: 0 }, t)
    const tb = tree.encode(tv)
    expect(codec.spent).toBeLessThanOrEqual(4096 + 16 * encodeCanonical(tv).length)
    expect(tree.decode(tb)).toEqual(tv)
  }), { numRuns: 200 })
})
