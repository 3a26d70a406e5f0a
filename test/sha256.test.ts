/** core/sha256.ts against Node's own SHA-256, at every length around the block boundaries. */
import { createHash } from "node:crypto"
import fc from "fast-check"
import { sha256Hex } from "../core/sha256.js"

test("equals node:crypto at lengths 0..200 and a few large ones", () => {
  for (const n of [...Array.from({ length: 201 }, (_, i) => i), 1000, 4096, 65_537]) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff)
    expect(sha256Hex(data)).toBe(createHash("sha256").update(data).digest("hex"))
  }
})

test("equals node:crypto on random bytes", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (data) => sha256Hex(data) === createHash("sha256").update(data).digest("hex")), { numRuns: 300 })
})
