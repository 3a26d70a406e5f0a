/**
 * State hashes for checkpoints: a 64-bit non-cryptographic hash of the canonical bytes of a
 * state, as 16 hex characters. It detects divergence (non-deterministic commands, bugs,
 * corrupted stores); it is not an integrity check against an attacker, who could only lie
 * about a state they serve anyway.
 *
 * Two independent 32-bit lanes (MurmurHash3's mixing constants) consume the bytes four at a
 * time; a final avalanche mixes both lanes and the length.
 */
import { encodeCanonical } from "./canonical.js"

const C1 = 0xcc9e2d51
const C2 = 0x1b873593
const C3 = 0x85ebca6b
const C4 = 0xc2b2ae35

const fmix = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, C3)
  h ^= h >>> 13
  h = Math.imul(h, C4)
  h ^= h >>> 16
  return h >>> 0
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")

/** Hash of raw bytes, 16 hex characters. */
export const hashBytes = (bytes: Uint8Array): string => {
  let h1 = 0x9747b28c
  let h2 = 0x2f9be6cc
  const n = bytes.length
  const end = n - (n % 4)
  for (let i = 0; i < end; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h1 ^= k
    h1 = (h1 << 13) | (h1 >>> 19)
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0
    let j = Math.imul(k, C3)
    j = (j << 17) | (j >>> 15)
    h2 ^= j
    h2 = (h2 << 11) | (h2 >>> 21)
    h2 = (Math.imul(h2, 9) + 0x38495ab5 + h1) | 0
  }
  let tail = 0
  for (let i = n - 1; i >= end; i--) tail = (tail << 8) | bytes[i]!
  if (n % 4 !== 0) {
    let k = Math.imul(tail, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h1 ^= k
    h2 ^= Math.imul(k, C3)
  }
  h1 ^= n
  h2 ^= Math.floor(n / 4294967296) ^ n
  h1 = (h1 + h2) | 0
  h2 = (h2 + h1) | 0
  h1 = fmix(h1)
  h2 = fmix(h2)
  h1 = (h1 + h2) | 0
  h2 = (h2 + h1) | 0
  return hex8(h1) + hex8(h2)
}

/** Hash of a state: hash of its canonical encoding. */
export const hashState = (state: unknown): string => hashBytes(encodeCanonical(state))
