/**
 * adapters/automerge/inflate.ts: the synchronous, bounded raw DEFLATE a CRDT field's load
 * measures deflated columns with (a browser has no synchronous inflate). It must agree with
 * zlib on everything zlib makes, stop at its bound, and refuse what is not DEFLATE.
 */
import zlib from "node:zlib"
import fc from "fast-check"
import { inflateRawBounded } from "../adapters/automerge/inflate.js"

/** Bytes with the repetition DEFLATE finds: runs, repeated words, and noise. */
const compressible = fc.array(fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 2000 })).map(([b, n]) => new Uint8Array(n).fill(b)),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 300 })).map(([w, n]) => Uint8Array.from({ length: w.length * n }, (_, i) => w[i % w.length]!)),
), { maxLength: 40 }).map((parts) => Buffer.concat(parts))

const options = fc.record({
  level: fc.integer({ min: 0, max: 9 }),
  strategy: fc.constantFrom(zlib.constants.Z_DEFAULT_STRATEGY, zlib.constants.Z_FIXED, zlib.constants.Z_HUFFMAN_ONLY, zlib.constants.Z_RLE, zlib.constants.Z_FILTERED),
})

test("inflates what zlib deflates, at every level and strategy (stored, fixed and dynamic blocks)", () => {
  fc.assert(fc.property(compressible, options, (data, o) => {
    const deflated = zlib.deflateRawSync(data, o)
    expect(Buffer.from(inflateRawBounded(deflated, data.length)!)).toEqual(data)
  }), { numRuns: 300 })
})

test("stops at the bound: one byte less than the output is undefined", () => {
  fc.assert(fc.property(compressible.filter((d) => d.length > 0), options, (data, o) => {
    expect(inflateRawBounded(zlib.deflateRawSync(data, o), data.length - 1)).toBeUndefined()
  }), { numRuns: 200 })
})

test("a DEFLATE bomb is refused at the bound: 64 MiB in 65 KB, inflated under 1 MiB", () => {
  const bomb = zlib.deflateRawSync(Buffer.alloc(64 << 20), { level: 9 })
  expect(bomb.length).toBeLessThan(100_000)
  expect(inflateRawBounded(bomb, 1 << 20)).toBeUndefined()
})

test("bytes that are not DEFLATE throw, or inflate to at most the bound; never more", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
    let out: Uint8Array | undefined
    try {
      out = inflateRawBounded(junk, 4096)
    } catch (e) {
      expect(e).toBeInstanceOf(Error)
      return
    }
    if (out !== undefined) expect(out.length).toBeLessThanOrEqual(4096)
  }), { numRuns: 2000 })
  expect(() => inflateRawBounded(Uint8Array.of(0x07), 100)).toThrow(/invalid block type/)
  expect(() => inflateRawBounded(zlib.deflateRawSync(Buffer.from("truncated, truncated")).subarray(0, 5), 100)).toThrow(/truncated/)
})
