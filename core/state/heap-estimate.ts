/**
 * What a machine document's state takes of the hub's memory, about: a walk of its plain
 * values, each counted at about what V8 keeps for it. The encoded size is far from it: an
 * array of empty objects takes 32 times its encoding (2 bytes each, 64 in memory), an object
 * of small keys 9 times, text and numbers about once (measured with node --expose-gc,
 * .scratch/heapratio.mts of the session that wrote this). The hub's memory gauge counts this
 * (core/authority/held-weight.ts), so a document's state, which its own bound holds in
 * encoded bytes, cannot fill the hub's heap many times over.
 *
 * Upper bounds where V8 does better (small objects keep their properties in the object,
 * arrays of numbers unboxed), so a state never counts much below what it holds.
 */

/** An object or an array itself. */
export const CONTAINER_HEAP_BYTES = 64
/** A key of an object: the entry and the key's string. */
const ENTRY_HEAP_BYTES = 48
/** An element of an array. */
const SLOT_HEAP_BYTES = 8
/** A string or a byte string, besides its content; a number stored as a heap number. */
const BOXED_HEAP_BYTES = 16

/**
 * Bytes of memory a state's written bytes (`JournaledState.written`, which counts a container
 * at 6 and a primitive at no less than its encoding) can take at most, as `heapBytes` counts
 * them: an empty object or byte string pushed into an array is 6 bytes written and 72 counted
 * (64 and its slot), every other value less for its bytes (a key's entry 48 for its 6 or more).
 */
export const WRITTEN_HEAP_FACTOR = 12

/** The estimate of what `value` holds in memory (plain data: what a state holds). */
export const heapBytes = (value: unknown): number => {
  let bytes = 0
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === "string") bytes += BOXED_HEAP_BYTES + v.length * (isLatin1(v) ? 1 : 2)
    else if (typeof v === "number") bytes += BOXED_HEAP_BYTES
    else if (v instanceof Uint8Array) bytes += CONTAINER_HEAP_BYTES + v.byteLength
    else if (Array.isArray(v)) {
      bytes += CONTAINER_HEAP_BYTES + v.length * SLOT_HEAP_BYTES
      for (const x of v) if (typeof x === "object" && x !== null || typeof x === "string" || typeof x === "number") stack.push(x)
    } else if (typeof v === "object" && v !== null) {
      bytes += CONTAINER_HEAP_BYTES
      // Only plain records are walked (what a state holds); anything else is counted as one.
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) continue
      for (const k of Object.keys(v)) {
        bytes += ENTRY_HEAP_BYTES + k.length
        const x = (v as Record<string, unknown>)[k]
        if (typeof x === "object" && x !== null || typeof x === "string" || typeof x === "number") stack.push(x)
      }
    }
  }
  return bytes
}

// eslint-disable-next-line no-control-regex
const isLatin1 = (s: string): boolean => s.length < 64 || !/[^\u0000-\u00ff]/.test(s)
