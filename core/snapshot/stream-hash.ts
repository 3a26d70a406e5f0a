/**
 * The state hash (core/hash.ts `hashBytes`) computed over bytes that arrive in pieces: a
 * snapshot's chunks as they are encoded, written, streamed or received. Feeding the pieces
 * of a byte string in any split gives exactly `hashBytes` of the whole, so a state can be
 * hashed without ever holding its encoding in one buffer. `hashBytes` is this over one piece:
 * the algorithm lives here only.
 *
 * Two independent 32-bit lanes (MurmurHash3's mixing constants) consume the bytes four at a
 * time (little-endian words); a final avalanche mixes both lanes and the length.
 */
const C1 = 0xcc9e2d51
const C2 = 0x1b873593
const C3 = 0x85ebca6b
const C4 = 0xc2b2ae35
// Read once, not per word: globals are slow inside a vm context (see core/bytes.ts; hashing
// 5 MB took 2 s under jest).
const imul = Math.imul

const fmix = (h: number): number => {
  h ^= h >>> 16
  h = imul(h, C3)
  h ^= h >>> 13
  h = imul(h, C4)
  h ^= h >>> 16
  return h >>> 0
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")

/** The first half of a word's mix (shared by full words and the final partial one). */
const mixK = (k: number): number => {
  k = imul(k, C1)
  k = (k << 15) | (k >>> 17)
  return imul(k, C2)
}

export class StreamHash {
  #h1 = 0x9747b28c
  #h2 = 0x2f9be6cc
  /** Bytes seen in all. */
  length = 0
  /** Up to 3 bytes waiting for a full 4-byte word, and how many. */
  #carry = 0
  #carried = 0

  update(bytes: Uint8Array): this {
    const n = bytes.length
    let h1 = this.#h1
    let h2 = this.#h2
    let carry = this.#carry
    let carried = this.#carried
    this.length += n
    let i = 0
    // Finish a word started by an earlier piece; it is mixed first, then the whole words.
    while (carried > 0 && carried < 4 && i < n) carry |= bytes[i++]! << (8 * carried++)
    const end = n - ((n - i) & 3)
    for (let k = carry, pending = carried === 4; pending || i < end; pending = false) {
      if (!pending) {
        k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)
        i += 4
      }
      k = mixK(k)
      h1 ^= k
      h1 = (h1 << 13) | (h1 >>> 19)
      h1 = (imul(h1, 5) + 0xe6546b64) | 0
      let j = imul(k, C3)
      j = (j << 17) | (j >>> 15)
      h2 ^= j
      h2 = (h2 << 11) | (h2 >>> 21)
      h2 = (imul(h2, 9) + 0x38495ab5 + h1) | 0
    }
    if (carried === 4) carry = carried = 0
    while (i < n) carry |= bytes[i++]! << (8 * carried++)
    this.#h1 = h1
    this.#h2 = h2
    this.#carry = carry
    this.#carried = carried
    return this
  }

  /** The hash of everything fed so far, 16 hex characters (equal to `hashBytes` of it all). */
  digest(): string {
    let h1 = this.#h1
    let h2 = this.#h2
    const n = this.length
    if (this.#carried > 0) {
      const k = mixK(this.#carry)
      h1 ^= k
      h2 ^= imul(k, C3)
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
}
