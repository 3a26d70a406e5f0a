/**
 * What a machine document's state takes of the hub's memory, about: each value counted at
 * about what V8 keeps for it. The encoded size is far from it: an array of empty objects takes
 * 32 times its encoding (2 bytes each, 64 in memory), an empty byte string 30 times, an object
 * of small keys 9 times, text and numbers about once (measured with node --expose-gc). The
 * hub's memory gauge counts this (core/authority/held-weight.ts), so a state, which its own
 * bound holds in encoded bytes, cannot fill the hub's heap many times over.
 *
 * Three ways to one figure, each an upper bound of the one before where they differ:
 * `heapOfEncoded` from canonical bytes before they are decoded (a stored snapshot), `heapBytes`
 * from a state, and what the state model adds up as commands write (`grownOf`,
 * the same costs with each value's place counted at an object entry's, text at two bytes a
 * character). Upper bounds where V8 does better (small objects keep their properties in the
 * object, decoded arrays are allocated at their length, numbers may be unboxed).
 */
import { ByteReader } from "../bytes.js"

/** An object itself, or an array's header. */
export const CONTAINER_HEAP_BYTES = 64
/** The slack of an array's backing store (V8 grows it by half and 16 slots as it is pushed to): 16 slots, counted for an empty one too (its first push allocates them). */
export const ARRAY_SLACK_HEAP_BYTES = 128
/** A key of an object: the entry (the key's characters besides). */
export const ENTRY_HEAP_BYTES = 48
/** An element of an array, with the half more its backing store may hold. */
export const SLOT_HEAP_BYTES = 12
/** A string besides its characters, or a heap number. */
export const BOXED_HEAP_BYTES = 16
/** A byte string besides its bytes: the view, its buffer and the buffer's backing store (measured about 200). */
export const BYTES_HEAP_BYTES = 224

/**
 * What a loaded document takes besides its state and client states: its authority, followers'
 * entries, timers, snapshot policy (a review measured about 24,250 bytes per followed document).
 */
export const DOC_HEAP_BYTES = 24 * 1024

/** The estimate of what `value` holds in memory (plain data: what a state holds). */
export const heapBytes = (value: unknown): number => {
  let bytes = 0
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === "string") bytes += BOXED_HEAP_BYTES + (isLatin1(v) ? v.length : 2 * v.length)
    else if (typeof v === "number") bytes += BOXED_HEAP_BYTES
    else if (v instanceof Uint8Array) bytes += BYTES_HEAP_BYTES + v.byteLength
    else if (Array.isArray(v)) {
      bytes += CONTAINER_HEAP_BYTES + ARRAY_SLACK_HEAP_BYTES + v.length * SLOT_HEAP_BYTES
      for (const x of v) if (typeof x === "object" && x !== null || typeof x === "string" || typeof x === "number") stack.push(x)
    } else if (typeof v === "object" && v !== null) {
      bytes += CONTAINER_HEAP_BYTES
      // Only plain records are walked (what a state holds); anything else is counted as one.
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) continue
      for (const k of Object.keys(v)) {
        bytes += ENTRY_HEAP_BYTES + (isLatin1(k) ? k.length : 2 * k.length)
        const x = (v as Record<string, unknown>)[k]
        if (typeof x === "object" && x !== null || typeof x === "string" || typeof x === "number") stack.push(x)
      }
    }
  }
  return bytes
}

/**
 * `heapBytes` of the value canonical `bytes` encode, read without decoding them (a pass over
 * the bytes, nothing built, with `pause` before each piece of it): a stored snapshot is
 * weighed before it becomes a state. Text
 * counts two bytes a character if any is past Latin-1. Throws `decode-failed` as decoding would
 * on bytes that end early (what else is wrong with them, decoding says).
 */
export const heapOfEncoded = async (bytes: Uint8Array, pause?: () => Promise<void> | undefined): Promise<number> => {
  const r = new ByteReader(bytes)
  let heap = 0
  // The containers being read: how many values each has left, and whether it is an object
  // (whose entries are a key, then a value).
  const left = [1]
  const inObject = [false]
  for (let steps = 1; left.length > 0; steps++) {
    // In pieces, as the decode after it (a 28 MiB snapshot took 250 ms in one block).
    if (pause !== undefined && steps % 2_048 === 0) await pause()
    const top = left.length - 1
    if (left[top] === 0) {
      left.pop()
      inObject.pop()
      continue
    }
    left[top]!--
    if (inObject[top]) heap += ENTRY_HEAP_BYTES + text(r.raw(r.varint()))
    const tag = r.byte()
    if (tag === 4) (r.varint(), (heap += BOXED_HEAP_BYTES))
    else if (tag === 5) (r.raw(8), (heap += BOXED_HEAP_BYTES))
    else if (tag === 6) heap += BOXED_HEAP_BYTES + text(r.raw(r.varint()))
    else if (tag === 7) heap += BYTES_HEAP_BYTES + r.raw(r.varint()).length
    else if (tag === 8 || tag === 9) {
      const n = r.varint()
      heap += CONTAINER_HEAP_BYTES + (tag === 8 ? ARRAY_SLACK_HEAP_BYTES + n * SLOT_HEAP_BYTES : 0)
      left.push(n)
      inObject.push(tag === 9)
    }
  }
  return heap
}

/** The memory of UTF-8 `utf8`'s characters as V8 holds them: one byte each if all are Latin-1, else two a UTF-16 unit. */
const text = (utf8: Uint8Array): number => {
  let latin1 = true
  // UTF-16 units: a byte that starts a character is one, a 4-byte one (0xF0 or more) two.
  let units = 0
  for (let i = 0; i < utf8.length; i++) {
    const b = utf8[i]!
    // A character past U+00FF starts with a lead byte of 0xC4 or more.
    if (b >= 0xc4) latin1 = false
    if ((b & 0xc0) !== 0x80) units += b >= 0xf0 ? 2 : 1
  }
  return latin1 ? units : 2 * units
}

// eslint-disable-next-line no-control-regex
const isLatin1 = (s: string): boolean => !/[^\u0000-\u00ff]/.test(s)
