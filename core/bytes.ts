/**
 * Growable byte writer and bounds-checked reader: the primitives every Canon encoding is
 * built from (canonical state bytes, storage records, wire frames). Varints are LEB128,
 * unsigned, up to 2^53 - 1, minimal (no trailing 0x80 0x00 padding: one number, one encoding);
 * anything else is a decode error, never a silent wrap.
 */
import { canonError } from "./errors.js"

/** Throws the `decode-failed` CanonError of malformed bytes, saying what is wrong. */
export const decodeFailed = (message: string): never => {
  throw canonError("decode-failed", message)
}

/**
 * Builtins used per byte or per value are read once here: inside a `vm` context (jest's test
 * environment) every read of a global goes through the context's interceptor, unoptimized
 * (decoding a 1.6 MB state took 10 times as long there as outside).
 */
const { min, floor } = Math
const { fromCharCode } = String
const MAX_SAFE_INTEGER = 2 ** 53 - 1

export const textEncoder = new TextEncoder()
// ignoreBOM: a leading U+FEFF is text, not a marker to strip ("\uFEFFa" must not decode as "a").
export const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
/** Bytewise unsigned order of keys, the Storage port's (core/ports/storage.ts). */
export const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return a.length - b.length
}

/** `b` in lowercase hexadecimal, two digits a byte (keys and ids in messages, actor ids). */
export const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

/** UTF-8 bytes of a well-formed string (a surrogate pair is 4), without encoding it. */
export const utf8Length = (s: string): number => {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c < 0xe000) ? 1 : 2
  }
  return n
}

/**
 * True when `s` has no lone UTF-16 surrogate: native where the runtime has it (Node 20, current
 * browsers); elsewhere encodeURIComponent, which refuses exactly those strings (URIError).
 */
export const wellFormed: (s: string) => boolean = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
  ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
  : (s) => {
      try {
        encodeURIComponent(s)
        return true
      } catch {
        return false
      }
    }

/** The signed integer of a zigzag varint's value: 0, -1, 1, -2... from 0, 1, 2, 3... */
export const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2)

export class ByteWriter {
  #buf: Uint8Array
  #view: DataView
  pos = 0

  constructor(initialSize = 256) {
    this.#buf = new Uint8Array(initialSize)
    this.#view = new DataView(this.#buf.buffer)
  }

  #ensure(extra: number): void {
    const need = this.pos + extra
    if (need <= this.#buf.length) return
    let size = this.#buf.length * 2
    while (size < need) size *= 2
    const next = new Uint8Array(size)
    next.set(this.#buf.subarray(0, this.pos))
    this.#buf = next
    this.#view = new DataView(next.buffer)
  }

  reset(): void {
    this.pos = 0
  }

  byte(b: number): void {
    this.#ensure(1)
    this.#buf[this.pos++] = b
  }

  /** Unsigned LEB128 varint of an integer in [0, 2^53). */
  varint(n: number): void {
    this.#ensure(8)
    while (n >= 0x80) {
      this.#buf[this.pos++] = (n % 0x80) | 0x80
      n = floor(n / 0x80)
    }
    this.#buf[this.pos++] = n
  }

  f64(n: number): void {
    this.#ensure(8)
    this.#view.setFloat64(this.pos, n)
    this.pos += 8
  }

  raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length)
    this.#buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): void {
    this.varint(bytes.length)
    this.raw(bytes)
  }

  /** Length-prefixed UTF-8. */
  string(s: string): void {
    // ASCII fast path: most keys and ids are ASCII, and this avoids a native call per string.
    const n = s.length
    if (n < 64) {
      this.#ensure(n + 1)
      let ascii = true
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c > 0x7f) { ascii = false; break }
        this.#buf[this.pos + 1 + i] = c
      }
      if (ascii) {
        this.#buf[this.pos] = n
        this.pos += n + 1
        return
      }
    }
    // TextEncoder would turn a lone surrogate into U+FFFD: two strings, one encoding.
    if (!wellFormed(s)) throw canonError("state-unencodable", "A string with a lone surrogate has no UTF-8 form: pair or remove it (s.toWellFormed()).")
    this.#ensure(n * 3 + 8)
    // Reserve the largest prefix the length could need, then move the text if it was smaller.
    const maxLen = n * 3
    const prefix = maxLen < 0x80 ? 1 : maxLen < 0x4000 ? 2 : maxLen < 0x200000 ? 3 : 4
    const start = this.pos
    const { written } = textEncoder.encodeInto(s, this.#buf.subarray(start + prefix))
    this.varint(written)
    const used = this.pos - start
    if (used !== prefix) this.#buf.copyWithin(start + used, start + prefix, start + prefix + written)
    this.pos = start + used + written
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.pos)
  }

  /** A view of what was written, valid until the next write or reset. */
  view_(): Uint8Array {
    return this.#buf.subarray(0, this.pos)
  }
}

/** One 8-byte scratch for every reader's floats: a DataView per reader cost ~4% of decoding. */
const F64_BYTES = new Uint8Array(8)
const F64_VIEW = new DataView(F64_BYTES.buffer)

export class ByteReader {
  pos = 0

  constructor(readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.pos
  }

  done(): boolean {
    return this.pos >= this.buf.length
  }

  byte(): number {
    if (this.pos >= this.buf.length) decodeFailed("Unexpected end of data.")
    return this.buf[this.pos++]!
  }

  varint(): number {
    let result = 0
    let mul = 1
    for (let i = 0; i < 8; i++) {
      const b = this.byte()
      result += (b & 0x7f) * mul
      if (b < 0x80) {
        if (b === 0 && i > 0) decodeFailed("Non-minimal varint.")
        if (result > MAX_SAFE_INTEGER) break
        return result
      }
      mul *= 0x80
    }
    return decodeFailed("Varint over 53 bits.")
  }

  f64(): number {
    if (this.remaining < 8) decodeFailed("Unexpected end of data.")
    F64_BYTES.set(this.buf.subarray(this.pos, this.pos + 8))
    this.pos += 8
    return F64_VIEW.getFloat64(0)
  }

  raw(length: number): Uint8Array {
    if (length > this.remaining) {
      decodeFailed(`Length ${length} runs past the end.`)
    }
    const out = this.buf.subarray(this.pos, this.pos + length)
    this.pos += length
    return out
  }

  bytes(): Uint8Array {
    return this.raw(this.varint()).slice()
  }

  string(): string {
    const len = this.varint()
    const b = this.raw(len)
    if (len < 32) {
      // One flat string, made at once: appending a character at a time makes V8 keep a string
      // of 13 characters or more as a chain of pieces (a 31-byte docId took some 600 bytes of
      // heap, and a connection's codec session keeps its docIds and names for its life).
      for (let i = 0; i < len; i++) if (b[i]! > 0x7f) return decodeUtf8(b)
      return fromCharCode.apply(null, b as unknown as number[])
    }
    return decodeUtf8(b)
  }
}

const decodeUtf8 = (b: Uint8Array): string => {
  try {
    return textDecoder.decode(b)
  } catch {
    return decodeFailed("Invalid UTF-8.")
  }
}


/** Whether two byte arrays hold the same bytes. */
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
