/**
 * Deterministic randomness for commands: `ctx.random()` is seeded from the document id and
 * the entry's seq, so every replica replaying the same entry draws the same numbers.
 * sfc32 (small, fast, passes PractRand to 2^40) seeded through a 32-bit string hash.
 */

/** 32-bit FNV-1a over UTF-16 code units: only used to derive seeds. */
const fnv1a32 = (text: string, seed: number): number => {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** A PRNG returning floats in [0, 1). */
export const sfc32 = (a: number, b: number, c: number, d: number): (() => number) => () => {
  a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0
  const t = (((a + b) | 0) + d) | 0
  d = (d + 1) | 0
  a = b ^ (b >>> 9)
  b = (c + (c << 3)) | 0
  c = (c << 21) | (c >>> 11)
  c = (c + t) | 0
  return (t >>> 0) / 4294967296
}

/** The generator behind `ctx.random()` for entry `seq` of document `docId`. */
export const entryRandom = (docId: string, seq: number): (() => number) => {
  const rng = sfc32(fnv1a32(docId, 1), fnv1a32(docId, 2), seq >>> 0, Math.floor(seq / 4294967296))
  for (let i = 0; i < 12; i++) rng() // mix the seed before first use
  return rng
}

/** A seeded generator for simulations and tests. */
export const seededRandom = (seed: number): (() => number) => {
  const rng = sfc32(0x9e3779b9, 0x243f6a88, 0xb7e15162, seed >>> 0)
  for (let i = 0; i < 12; i++) rng()
  return rng
}
