/**
 * The state hash (core/hash.ts `hashBytes`) computed over bytes that arrive in pieces: a
 * snapshot's chunks as they are encoded, written, streamed or received. Feeding the pieces
 * of a byte string in any split gives exactly `hashBytes` of the whole, so a state can be
 * hashed without ever holding its encoding in one buffer.
 */
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

export class StreamHash {
  private h1 = 0x9747b28c
  private h2 = 0x2f9be6cc
  /** Bytes seen in all. */
  length = 0
  /** Up to 3 bytes waiting for a full 4-byte word. */
  private carry = 0
  private carried = 0

  private word(k: number): void {
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    let h1 = this.h1 ^ k
    h1 = (h1 << 13) | (h1 >>> 19)
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0
    let j = Math.imul(k, C3)
    j = (j << 17) | (j >>> 15)
    let h2 = this.h2 ^ j
    h2 = (h2 << 11) | (h2 >>> 21)
    h2 = (Math.imul(h2, 9) + 0x38495ab5 + h1) | 0
    this.h1 = h1
    this.h2 = h2
  }

  update(bytes: Uint8Array): this {
    let i = 0
    const n = bytes.length
    this.length += n
    // Finish a word started by the previous piece.
    while (this.carried > 0 && this.carried < 4 && i < n) {
      this.carry |= bytes[i++]! << (8 * this.carried)
      this.carried++
    }
    if (this.carried === 4) {
      this.word(this.carry)
      this.carry = 0
      this.carried = 0
    }
    const end = i + ((n - i) & ~3)
    for (; i < end; i += 4) this.word(bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))
    for (; i < n; i++) {
      this.carry |= bytes[i]! << (8 * this.carried)
      this.carried++
    }
    return this
  }

  /** The hash of everything fed so far, 16 hex characters (equal to `hashBytes` of it all). */
  digest(): string {
    let h1 = this.h1
    let h2 = this.h2
    const n = this.length
    if (this.carried > 0) {
      let k = Math.imul(this.carry, C1)
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
}
