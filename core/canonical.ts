/**
 * Canonical encoding of plain data: one value, one byte sequence, on every peer. State
 * hashes, state transfers and stored records all go through it.
 *
 * Plain data is: null, undefined, booleans, numbers, strings, Uint8Array, arrays and plain
 * objects of those. Object keys are written in sorted order and properties whose value is
 * undefined are left out (as JSON does), so two states that read the same encode the same.
 * Integers in (-2^52, 2^52) are zigzag varints, other numbers (and -0) are float64; every NaN
 * is written as the one canonical NaN (0x7ff8000000000000), whatever its payload.
 * Anything else (Map, Date, class instances, functions) is refused with `state-unencodable`:
 * a hash over such a value would not mean the same on every peer.
 *
 * The decoder accepts canonical input only, so a value has exactly one encoding and
 * encode(decode(b)) == b for every b it accepts: minimal varints, integers in (-2^52, 2^52)
 * as varints (never as floats), the canonical NaN only, object keys strictly sorted (no
 * duplicates), no undefined property, no trailing bytes. Two peers can therefore compare state
 * bytes, not just hashes, and a stored or received state re-encodes to the bytes it came in.
 */
import { ByteReader, ByteWriter, decodeFailed, unzigzag, utf8Length } from "./bytes.js"
import { canonError } from "./errors.js"

/** A value's tag byte (an enum: esbuild writes the numbers where they are used). */
enum Tag {
  NULL = 0,
  FALSE = 1,
  TRUE = 2,
  UNDEFINED = 3,
  INT = 4,
  FLOAT = 5,
  STRING = 6,
  BYTES = 7,
  ARRAY = 8,
  OBJECT = 9,
}

const INT_LIMIT = 2 ** 52
/** Largest zigzag varint of an integer in (-2^52, 2^52): 2^52 - 1 encodes as 2^53 - 2. */
const MAX_ZIGZAG = 2 ** 53 - 2
/** The one NaN: quiet, positive, no payload (big-endian float64). */
const CANONICAL_NAN = new Uint8Array([0x7f, 0xf8, 0, 0, 0, 0, 0, 0])

/**
 * Roots the engine verified as state (plain-data trees nothing else holds): fresh decodes and
 * JournaledState roots. A JournaledState takes such a root as it is instead of copying it.
 */
export const verifiedTrees = new WeakSet<object>()

// Read once, not per value: globals are slow inside a vm context (see core/bytes.ts).
const { isInteger } = Number
const { is, getPrototypeOf, keys: ownKeys } = Object
const { isArray } = Array
const { isView } = ArrayBuffer
const toTag = Object.prototype.toString
/** Uint8Array from any realm. */
export const isBytes = (v: unknown): v is Uint8Array => isView(v) && toTag.call(v) === "[object Uint8Array]"
/**
 * Whether an object's prototype is a plain object's, realm-independently (iframes, vm
 * contexts, structuredClone): null or some realm's Object.prototype, whose own prototype is null.
 */
export const hasPlainPrototype = (v: object): boolean => {
  const proto = getPrototypeOf(v)
  return proto === null || getPrototypeOf(proto) === null
}

const objectProto = Object.prototype
export const hasOwn = objectProto.hasOwnProperty

/**
 * Sets `key` as an own data property (new, or one already there: every property of plain data is
 * writable). Assignment would call the `__proto__` setter (a "__proto__" key from the wire stays a
 * plain key, not a new prototype), or fail where a hardened environment froze Object.prototype;
 * defining never does either.
 */
export const setOwn = (o: object, key: string, v: unknown): void => {
  if (key in objectProto) Object.defineProperty(o, key, { value: v, writable: true, enumerable: true, configurable: true })
  else (o as Record<string, unknown>)[key] = v
}

/** What to store instead, by constructor name or typeof (own keys only: no prototype). */
const INSTEAD: Readonly<Record<string, string>> = {
  __proto__: null as unknown as string,
  Date: "a number or an ISO string",
  Set: "an array",
  bigint: "a string or a number",
  symbol: "a string",
  function: "its result",
}

/** A value that is not plain data, and what to store instead: ["a Date", "Store a number or an ISO string instead."]. */
export const notPlain = (v: unknown): [what: string, instead: string] => {
  let name: string = typeof v
  if (name === "object") {
    try {
      name = String((getPrototypeOf(v) as { constructor?: { name?: unknown } }).constructor?.name || "object with a prototype")
    } catch {
      name = "exotic object"
    }
  }
  return [`${/^[AEIOU]/i.test(name) ? "an" : "a"} ${name}`, `Store ${INSTEAD[name] ?? (isView(v) ? "a Uint8Array" : "its data in a plain object")} instead.`]
}

const unencodable = (v: unknown): never => {
  const [what, instead] = notPlain(v)
  throw canonError("state-unencodable", `Cannot encode ${what}. ${instead}`)
}

/** Integers in (-2^52, 2^52), -0 not: written as varints. */
const isVarint = (n: number): boolean => isInteger(n) && n > -INT_LIMIT && n < INT_LIMIT && !is(n, -0)

/** Nesting deeper than this is refused: it protects the decoder's stack from hostile input. */
export const MAX_DEPTH = 512

const tooDeep = `Value nests deeper than ${MAX_DEPTH} levels.`

export const writeValue = (w: ByteWriter, value: unknown, depth = 0): void => {
  switch (typeof value) {
    case "number":
      if (isVarint(value)) {
        w.byte(Tag.INT)
        w.varint(value >= 0 ? value * 2 : -value * 2 - 1)
      } else {
        w.byte(Tag.FLOAT)
        if (value !== value) w.raw(CANONICAL_NAN)
        else w.f64(value)
      }
      return
    case "string":
      w.byte(Tag.STRING)
      w.string(value)
      return
    case "boolean":
      w.byte(value ? Tag.TRUE : Tag.FALSE)
      return
    case "undefined":
      w.byte(Tag.UNDEFINED)
      return
    case "object": {
      if (value === null) {
        w.byte(Tag.NULL)
        return
      }
      if (depth >= MAX_DEPTH) throw canonError("state-unencodable", tooDeep)
      if (isArray(value)) {
        w.byte(Tag.ARRAY)
        w.varint(value.length)
        for (let i = 0; i < value.length; i++) writeValue(w, value[i], depth + 1)
        return
      }
      if (isBytes(value)) {
        w.byte(Tag.BYTES)
        w.bytes(value)
        return
      }
      if (!hasPlainPrototype(value)) unencodable(value)
      const obj = value as Record<string, unknown>
      const keys = ownKeys(obj)
      let count = 0
      for (let i = 0; i < keys.length; i++) if (obj[keys[i]!] !== undefined) count++
      if (keys.length > 1) keys.sort()
      w.byte(Tag.OBJECT)
      w.varint(count)
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!
        const v = obj[k]
        if (v === undefined) continue
        w.string(k)
        writeValue(w, v, depth + 1)
      }
      return
    }
    default:
      unencodable(value)
  }
}

/**
 * The count of a container's `what`, each at least `least` bytes: a larger count is a lie,
 * refused before allocating. The wire codec's counts too (codec-shared.ts reports it as
 * `truncated`).
 */
export const counted = (r: ByteReader, least: number, what = "items"): number => {
  const n = r.varint()
  if (n * least > r.remaining) decodeFailed(`${n} ${what} cannot fit in ${r.remaining} bytes.`)
  return n
}

/** The values of the tags NULL, FALSE, TRUE, UNDEFINED. */
const CONSTANTS = [null, false, true, undefined]

export const readValue = (r: ByteReader, depth = 0): unknown => {
  const tag = r.byte()
  if (tag < Tag.INT) return CONSTANTS[tag]
  // The encoder counts bytes as a nesting level: so does the decoder, or it would accept what cannot re-encode.
  if (tag >= Tag.BYTES && tag <= Tag.OBJECT && depth >= MAX_DEPTH) decodeFailed(tooDeep)
  switch (tag) {
    case Tag.INT: {
      const z = r.varint()
      if (z > MAX_ZIGZAG) decodeFailed("An integer beyond 2^52.")
      return unzigzag(z)
    }
    case Tag.FLOAT: {
      const at = r.pos
      const n = r.f64()
      // A NaN other than the canonical one, or an integer that is a varint.
      if (n !== n ? r.buf.subarray(at, at + 8).some((b, i) => b !== CANONICAL_NAN[i]) : isVarint(n)) decodeFailed("A non-canonical float.")
      return n
    }
    case Tag.STRING: return r.string()
    case Tag.BYTES: return r.bytes()
    case Tag.ARRAY: {
      const n = counted(r, 1)
      const out = new Array<unknown>(n)
      for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1)
      return out
    }
    case Tag.OBJECT: {
      const n = counted(r, 2)
      const out: Record<string, unknown> = {}
      let prev = ""
      for (let i = 0; i < n; i++) {
        const k = r.string()
        // Strictly increasing (UTF-16 code unit order, as the encoder's sort): one order, no duplicates.
        if (i > 0 && !(prev < k)) decodeFailed("Keys out of order.")
        prev = k
        const v = readValue(r, depth + 1)
        if (v === undefined) decodeFailed("An undefined property.")
        setOwn(out, k, v)
      }
      return out
    }
    default:
      decodeFailed(`Unknown value tag ${tag}.`)
  }
}

/** A container being decoded by `decodeCanonicalSliced`: its items so far, and for an object the last key. */
interface Open {
  readonly out: unknown[] | Record<string, unknown>
  readonly n: number
  i: number
  readonly object: boolean
  key: string
}

/**
 * `decodeCanonical` for a hub's stored states, in pieces of VALUES_PER_PIECE values with
 * `pause` before each (a promise: the work waits for it): a 28 MiB snapshot of 500,000 cards
 * decoded in one block held the hub's event loop 1.9 s at each load. The same checks and
 * result, with an explicit stack for containers (scalars are `readValue`'s).
 */
export const decodeCanonicalSliced = async (bytes: Uint8Array, pause: () => Promise<void> | undefined): Promise<unknown> => {
  const r = new ByteReader(bytes)
  const stack: Open[] = []
  let value: unknown
  for (let steps = 1; ; steps++) {
    if (steps % VALUES_PER_PIECE === 0) await pause()
    const top = stack[stack.length - 1]
    if (top !== undefined && top.i === top.n) {
      stack.pop()
      value = top.out
    } else {
      if (top?.object === true) {
        const k = r.string()
        // Strictly increasing, as readValue checks.
        if (top.i > 0 && !(top.key < k)) decodeFailed("Keys out of order.")
        top.key = k
      }
      const tag = r.buf[r.pos]
      if (tag === Tag.ARRAY || tag === Tag.OBJECT) {
        r.byte()
        if (stack.length >= MAX_DEPTH) decodeFailed(tooDeep)
        const object = tag === Tag.OBJECT
        const n = counted(r, object ? 2 : 1)
        stack.push({ out: object ? {} : new Array<unknown>(n), n, i: 0, object, key: "" })
        continue
      }
      value = readValue(r, stack.length)
    }
    const parent = stack[stack.length - 1]
    if (parent === undefined) break
    if (parent.object) {
      if (value === undefined) decodeFailed("An undefined property.")
      setOwn(parent.out, parent.key, value)
    } else (parent.out as unknown[])[parent.i] = value
    parent.i++
  }
  if (!r.done()) decodeFailed(`${r.remaining} bytes left after the value.`)
  if (typeof value === "object" && value !== null) verifiedTrees.add(value)
  return value
}

/** Values `decodeCanonicalSliced` decodes between pauses (about 4 ms of small ones). */
const VALUES_PER_PIECE = 2_048

/**
 * An upper bound of the canonical size of a value, without encoding it: used to cut
 * messages under the frame limit. Strings count 3 bytes per UTF-16 unit (UTF-8's worst).
 */
export const sizeBound = (value: unknown, depth = 0): number => {
  switch (typeof value) {
    case "string": return 6 + value.length * 3
    case "number": return 9
    case "object": {
      if (value === null || depth > MAX_DEPTH) return 1
      if (isArray(value)) {
        let n = 6
        for (let i = 0; i < value.length; i++) n += sizeBound(value[i], depth + 1)
        return n
      }
      if (isView(value)) return 6 + value.byteLength
      let n = 6
      for (const k in value) n += 6 + k.length * 3 + sizeBound((value as Record<string, unknown>)[k], depth + 1)
      return n
    }
    default: return 1
  }
}

/** Exactly the canonical bytes of a primitive (a value that is not an object), as writeValue writes it. */
export const primitiveBytes = (v: unknown): number => {
  if (typeof v === "string") {
    const n = utf8Length(v)
    return 1 + varintBytes(n) + n
  }
  return typeof v === "number" && isVarint(v) ? 1 + varintBytes(v >= 0 ? v * 2 : -v * 2 - 1) : typeof v === "number" ? 9 : 1
}

/** Bytes of the varint of `z` (an integer in [0, 2^53)). */
const varintBytes = (z: number): number => {
  let n = 1
  for (; z >= 128; n++) z = Math.floor(z / 128)
  return n
}

const shared = new ByteWriter(1 << 16)

/** The canonical bytes of a plain value. */
export const encodeCanonical = (value: unknown): Uint8Array => {
  shared.reset()
  writeValue(shared, value)
  return shared.finish()
}

/**
 * Decodes canonical bytes; a malformed or non-canonical input is a `decode-failed` CanonError.
 * The result is a fresh tree of plain data (marked verified: a JournaledState adopts it as is).
 */
export const decodeCanonical = (bytes: Uint8Array): unknown => {
  const r = new ByteReader(bytes)
  const v = readValue(r)
  if (!r.done()) decodeFailed(`${r.remaining} bytes left after the value.`)
  if (typeof v === "object" && v !== null) verifiedTrees.add(v)
  return v
}
