/**
 * Raw DEFLATE (RFC 1951), synchronous and bounded: what `measureChunk` needs to count the
 * columns of a saved Automerge document before Automerge loads it. A browser has no
 * synchronous inflate (DecompressionStream is asynchronous, and a CRDT field loads inside a
 * synchronous snapshot install), and `save()` deflates every column over 256 bytes (this
 * version stores plain columns, validate.ts `savePlain`; older snapshots and stores hold
 * deflated ones, and a peer may send them), so the field's load measures with this one. It stops as soon as the output passes `max`: a few
 * kilobytes of DEFLATE can stand for gigabytes.
 *
 * Canonical Huffman decoding one bit at a time (as zlib's "puff"): small and simple rather
 * than fast: about 30 MB of output a second on literal-heavy data, 150 on repetitive data
 * (zlib: 3-5 times that), measured on this project's machine.
 */

class BadDeflate extends Error {}

/** A canonical Huffman code: how many codes of each length, and the symbols in code order. */
interface Huffman {
  readonly counts: Uint16Array
  readonly symbols: Uint16Array
}

const huffman = (lengths: Uint8Array, n: number): Huffman => {
  const counts = new Uint16Array(16)
  for (let i = 0; i < n; i++) counts[lengths[i]!]!++
  // An over-subscribed code is invalid; an incomplete one is allowed (a single distance code).
  let left = 1
  for (let len = 1; len < 16; len++) {
    left = left * 2 - counts[len]!
    if (left < 0) throw new BadDeflate("over-subscribed Huffman code")
  }
  const offs = new Uint16Array(16)
  for (let len = 1; len < 15; len++) offs[len + 1] = offs[len]! + counts[len]!
  const symbols = new Uint16Array(n)
  for (let i = 0; i < n; i++) if (lengths[i] !== 0) symbols[offs[lengths[i]!]!++] = i
  return { counts, symbols }
}

const LENGTH_BASE = Uint16Array.of(3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258)
const LENGTH_EXTRA = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0)
const DIST_BASE = Uint16Array.of(1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577)
const DIST_EXTRA = Uint8Array.of(0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13)
/** The order code length code lengths come in (RFC 1951, 3.2.7). */
const CL_ORDER = Uint8Array.of(16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15)

let fixed: { lit: Huffman; dist: Huffman } | undefined
const fixedCodes = (): { lit: Huffman; dist: Huffman } => {
  if (fixed === undefined) {
    const l = new Uint8Array(288)
    l.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288)
    fixed = { lit: huffman(l, 288), dist: huffman(new Uint8Array(30).fill(5), 30) }
  }
  return fixed
}

class Inflater {
  private pos = 0
  private bitBuf = 0
  private bitCount = 0
  private out: Uint8Array
  private length = 0

  constructor(private readonly data: Uint8Array, private readonly max: number) {
    this.out = new Uint8Array(Math.min(max, Math.max(64, data.length * 4)))
  }

  private bits(n: number): number {
    let v = this.bitBuf
    while (this.bitCount < n) {
      if (this.pos >= this.data.length) throw new BadDeflate("truncated")
      v |= this.data[this.pos++]! << this.bitCount
      this.bitCount += 8
    }
    this.bitBuf = v >>> n
    this.bitCount -= n
    return v & ((1 << n) - 1)
  }

  private decode(h: Huffman): number {
    let code = 0, first = 0, index = 0
    for (let len = 1; len < 16; len++) {
      code |= this.bits(1)
      const count = h.counts[len]!
      if (code - count < first) return h.symbols[index + (code - first)]!
      index += count
      first = (first + count) << 1
      code <<= 1
    }
    throw new BadDeflate("invalid Huffman code")
  }

  /** Room for `n` more bytes, or false when the output would pass the bound. */
  private room(n: number): boolean {
    const need = this.length + n
    if (need > this.max) return false
    if (need > this.out.length) {
      const next = new Uint8Array(Math.min(this.max, Math.max(need, this.out.length * 2)))
      next.set(this.out.subarray(0, this.length))
      this.out = next
    }
    return true
  }

  /** The inflated bytes, or undefined past `max`. */
  run(): Uint8Array | undefined {
    for (;;) {
      const last = this.bits(1)
      const type = this.bits(2)
      if (type === 0) {
        // Stored: byte-aligned length, its complement, then the bytes.
        this.bitBuf = 0
        this.bitCount = 0
        if (this.pos + 4 > this.data.length) throw new BadDeflate("truncated")
        const len = this.data[this.pos]! | (this.data[this.pos + 1]! << 8)
        const nlen = this.data[this.pos + 2]! | (this.data[this.pos + 3]! << 8)
        this.pos += 4
        if (len !== (~nlen & 0xffff)) throw new BadDeflate("stored block length does not match its complement")
        if (this.pos + len > this.data.length) throw new BadDeflate("truncated")
        if (!this.room(len)) return undefined
        this.out.set(this.data.subarray(this.pos, this.pos + len), this.length)
        this.length += len
        this.pos += len
      } else if (type === 1) {
        const f = fixedCodes()
        if (!this.codes(f.lit, f.dist)) return undefined
      } else if (type === 2) {
        const { lit, dist } = this.dynamic()
        if (!this.codes(lit, dist)) return undefined
      } else throw new BadDeflate("invalid block type")
      if (last === 1) return this.out.subarray(0, this.length)
    }
  }

  private dynamic(): { lit: Huffman; dist: Huffman } {
    const nlen = this.bits(5) + 257
    const ndist = this.bits(5) + 1
    const ncode = this.bits(4) + 4
    if (nlen > 286 || ndist > 30) throw new BadDeflate("too many length or distance codes")
    const lengths = new Uint8Array(320)
    for (let i = 0; i < ncode; i++) lengths[CL_ORDER[i]!] = this.bits(3)
    const cl = huffman(lengths, 19)
    lengths.fill(0)
    for (let i = 0; i < nlen + ndist;) {
      const sym = this.decode(cl)
      if (sym < 16) {
        lengths[i++] = sym
        continue
      }
      let len = 0, repeat: number
      if (sym === 16) {
        if (i === 0) throw new BadDeflate("a repeat with no previous length")
        len = lengths[i - 1]!
        repeat = 3 + this.bits(2)
      } else if (sym === 17) repeat = 3 + this.bits(3)
      else repeat = 11 + this.bits(7)
      if (i + repeat > nlen + ndist) throw new BadDeflate("too many code lengths")
      while (repeat-- > 0) lengths[i++] = len
    }
    if (lengths[256] === 0) throw new BadDeflate("no end-of-block code")
    return { lit: huffman(lengths.subarray(0, nlen), nlen), dist: huffman(lengths.subarray(nlen, nlen + ndist), ndist) }
  }

  /** A compressed block's codes; false when the output passes the bound. */
  private codes(lit: Huffman, dist: Huffman): boolean {
    for (;;) {
      const sym = this.decode(lit)
      if (sym < 256) {
        if (!this.room(1)) return false
        this.out[this.length++] = sym
      } else if (sym === 256) return true
      else {
        const li = sym - 257
        if (li >= 29) throw new BadDeflate("invalid length code")
        const len = LENGTH_BASE[li]! + this.bits(LENGTH_EXTRA[li]!)
        const di = this.decode(dist)
        if (di >= 30) throw new BadDeflate("invalid distance code")
        const d = DIST_BASE[di]! + this.bits(DIST_EXTRA[di]!)
        if (d > this.length) throw new BadDeflate("distance before the start of the output")
        if (!this.room(len)) return false
        const out = this.out
        for (let k = 0, at = this.length; k < len; k++, at++) out[at] = out[at - d]!
        this.length += len
      }
    }
  }
}

/**
 * Inflates raw DEFLATE `data`: the bytes, or undefined as soon as they would pass `max`.
 * Throws on data that is not DEFLATE.
 */
export const inflateRawBounded = (data: Uint8Array, max: number): Uint8Array | undefined => new Inflater(data, Math.max(0, max)).run()
