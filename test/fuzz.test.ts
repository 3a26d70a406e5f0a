/**
 * Bounded fuzzing of both decoders under protocols 1 and 2 (the long run is `npm run fuzz -- --frames 1000000`):
 * random bytes and valid frames mutated by bit flips, truncations, lying lengths, varint
 * overflow, unknown types, splices and deep nesting. No throw escapes, every failure is a
 * DecodeError with a known code, every accepted frame re-encodes stably, and what a decode
 * allocates stays in proportion to its frame.
 */
import { FOOTPRINT_PER_BYTE, runFuzz } from "./fuzz.js"

const FRAMES = 100_000

test(`${FRAMES} fuzzed frames: no escapes, only known error codes, bounded allocation`, () => {
  const report = runFuzz({ frames: FRAMES, seed: 20240611 })
  if (report.escapeCount > 0) {
    throw new Error(`decoders mishandled ${report.escapeCount} frames, the first ones:\n${report.escapes.map((e) => `${e.problem}\n  ${e.frame}`).join("\n")}`)
  }
  // both directions, both protocol versions
  expect(report.decodes).toBe(4 * FRAMES)

  // The mutations reach every failure a frame can have, and enough frames still decode.
  for (const code of ["empty", "truncated", "too-large", "bad-varint", "unknown-type", "bad-value", "trailing-bytes", "bad-utf8", "too-deep"]) {
    expect(report.errors[code] ?? 0).toBeGreaterThan(100)
  }
  expect(report.accepted).toBeGreaterThan(FRAMES / 50)
  expect(report.acceptedCompact).toBeGreaterThan(FRAMES / 500)
  expect(report.ignored).toBeGreaterThan(FRAMES / 50)

  // Allocation: each accepted message is within FOOTPRINT_PER_BYTE slots per frame byte
  // (checked per frame by runFuzz), and memory sampled across the run stays flat.
  expect(report.maxFootprintRatio).toBeLessThanOrEqual(FOOTPRINT_PER_BYTE)
  expect(report.arrayBuffersGrowth).toBeLessThan(16 << 20)
  expect(report.heapGrowth).toBeLessThan(128 << 20)
})
