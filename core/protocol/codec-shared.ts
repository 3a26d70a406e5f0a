/**
 * What both directions of the wire codec share (the specification is the header of
 * core/protocol/codec.ts): options and errors, the connection's session, type numbers, and
 * the primitives that write and read fields. codec-client.ts (what a client encodes and
 * decodes) and codec-server.ts (the hub's half) build on it, so a browser bundle carries
 * one direction only.
 */
import * as Data from "effect/Data"
import { ByteReader, ByteWriter, unzigzag, utf8Length } from "../bytes.js"
import { counted, isBytes } from "../canonical.js"
import { CanonError, canonError, type WireRejectionCode, errorText } from "../errors.js"
import { commandNameProblem, docIdBytesProblem } from "../limits.js"
import type { RefusalCode } from "./messages.js"

/** The protocol versions this build speaks. */
export const PROTOCOL_VERSIONS: { readonly min: 1; readonly max: 4 } = { min: 1, max: 4 }

/** Frames larger than this are refused unread (and never produced). */
export const DEFAULT_MAX_FRAME_BYTES = 1 << 20

export type DecodeErrorCode =
  | "empty" // a frame of zero bytes
  | "truncated" // the frame ends inside a field, or a count/length cannot fit in what is left
  | "too-large" // the frame is over maxFrameBytes
  | "bad-varint" // a varint longer than 53 bits
  | "unknown-type" // a required message type this build does not know (or of the other direction)
  | "bad-value" // a field holds a value the protocol does not allow
  | "trailing-bytes" // bytes left after the message
  | "bad-utf8" // a string that is not UTF-8
  | "too-deep" // a canonical value nested deeper than allowed
  | "unsupported-version" // the codec was asked for a protocol version it does not speak

/** Why a frame could not be decoded. Returned, never thrown, by the decoders. */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly code: DecodeErrorCode
  readonly message: string
}> {}

export type Decoded<T> =
  | { readonly ok: true; readonly message: T }
  /** An optional message of a type this build does not know: skip it. */
  | { readonly ok: "ignore"; readonly type: number }
  | { readonly ok: false; readonly error: DecodeError }

export interface CodecOptions {
  /** The protocol version the connection speaks (default: 1). */
  readonly version?: number
  /**
   * The connection's memory across frames: required to encode or decode protocol 2's compact
   * frames, and kept up to date by every frame that passes (one per connection end).
   */
  readonly session?: CodecSession
  /** Largest frame accepted or produced (default: DEFAULT_MAX_FRAME_BYTES). */
  readonly maxFrameBytes?: number
}

/**
 * What one end of a connection remembers across frames, for protocol 2's compact frames:
 * the channel number of each document (the n-th document subscribed on the connection is
 * channel n, counted by both ends as subscribe frames pass), the command names each end
 * defined, and the connection's clientId (from its hello: it names elided entries).
 *
 * What it remembers is bounded where it enters, in count and in bytes, the same way on both
 * ends (the encoder refuses what the decoder would): a docId of at most MAX_DOC_ID_BYTES, a
 * command name of at most MAX_COMMAND_NAME_BYTES, at most MAX_CHANNELS documents and
 * MAX_NAMES names, and MAX_SESSION_BYTES of them all, counted as the memory they hold
 * (`rememberedCost`: the string as the runtime keeps it and its table entries), not as the
 * bytes they travel as (with 16-byte docIds the UTF-8 count let a session hold three times
 * its budget).
 *
 * A channel is never given back: the n-th document subscribed is channel n on both ends, also
 * when the hub refuses the subscribe, and a client that subscribes to the document again on
 * the connection uses the same channel. The hub bounds refused subscribes per connection
 * instead (hub.ts, `maxRefusedSubscribes`).
 */
export class CodecSession {
  clientId: string | undefined
  readonly #channels = new Map<string, number>()
  readonly #docs: string[] = []
  /** Names this end defined for the other. */
  readonly namesSent = new Map<string, number>()
  /**
   * Names the other end defined, in the order it defined them (name k is the k-th). Only a
   * decoding hub defines them (codec-server.ts `defineReceived`, which makes the list): a
   * function there, not a method here, so that a client's bundle leaves it out.
   */
  declare namesReceived?: string[]
  /** @internal The same names as a set (made by `defineReceived`): a name defined twice is found without a scan. */
  declare received?: Set<string>
  #bytes = 0

  /** The memory the docIds and names remembered hold (`rememberedCost` each; at most MAX_SESSION_BYTES). */
  get bytes(): number {
    return this.#bytes
  }

  /**
   * Counts a subscribe of a docId of `bytes` UTF-8 bytes: a new document gets the next
   * channel. Returns why it cannot (past a limit), or undefined.
   */
  subscribed(docId: string, bytes = utf8Length(docId)): string | undefined {
    if (this.#channels.has(docId)) return undefined
    const problem = docIdBytesProblem(bytes) ?? this.#admit(this.#docs.length, MAX_CHANNELS, "documents", docId, bytes)
    if (problem !== undefined) return problem
    this.#docs.push(docId)
    this.#channels.set(docId, this.#docs.length)
    return undefined
  }

  channelOf(docId: string): number | undefined {
    return this.#channels.get(docId)
  }

  docOf(channel: number): string | undefined {
    return this.#docs[channel - 1]
  }

  /** A name this end defines (encoding): its number, or why it cannot be defined. */
  defineSent(name: string, bytes = utf8Length(name)): number | string {
    const k = this.namesSent.get(name)
    if (k !== undefined) return k
    return this.nameProblem(name, this.namesSent.size, bytes) ?? this.namesSent.set(name, this.namesSent.size + 1).size
  }

  /**
   * @internal Why the name `name` of `bytes` UTF-8 bytes cannot be defined when `defined`
   * names are (past a limit), or undefined, its bytes then counted.
   */
  nameProblem(name: string, defined: number, bytes: number): string | undefined {
    return commandNameProblem(name, bytes) ?? this.#admit(defined, MAX_NAMES, "command names", name, bytes)
  }

  /** Why one more of `count` things (at most `max`), the string `s` of `bytes` UTF-8 bytes, cannot be remembered, or undefined, its cost then counted. */
  #admit(count: number, max: number, what: string, s: string, bytes: number): string | undefined {
    if (count >= max) return `At most ${max} ${what} per connection: reconnect.`
    const cost = rememberedCost(s, bytes)
    if (this.#bytes + cost > MAX_SESSION_BYTES) return `A connection may name at most ${MAX_SESSION_BYTES} bytes of documents and commands: reconnect.`
    this.#bytes += cost
    return undefined
  }
}

/**
 * What a session keeps per docId or name beyond the string's characters: the string's header,
 * its entry in a table by name (a hash map) and in a list by number. Measured on V8 (Node 20,
 * attack review r15's session-mem-inproc.mts): 50 to 90 bytes, depending on how full the hash
 * map is; with 96 a session filled with docIds of 1 to 200 bytes holds 2.8 to 3.6 MiB.
 */
export const ENTRY_OVERHEAD = 96

/**
 * The memory a remembered string of `bytes` UTF-8 bytes holds, as both ends count it (a pure
 * function of the string: the encoder and the decoder agree): an ASCII string keeps a byte a
 * character; any other may keep two (V8 keeps a string with a character past U+00FF in
 * UTF-16), plus ENTRY_OVERHEAD.
 */
export const rememberedCost = (s: string, bytes: number): number => ENTRY_OVERHEAD + (bytes === s.length ? bytes : 2 * s.length)

/** Documents one connection may subscribe to over its life (channels are never reused). */
export const MAX_CHANNELS = 65_536
/** Command names one end may define on a connection. */
export const MAX_NAMES = 4096
/**
 * The memory the docIds and command names one session remembers over a connection's life may
 * hold (`rememberedCost` each): 6,898 docIds of the longest kind, or 26,214 of 64 bytes; past
 * it the client reconnects (a new connection starts a new session), as past MAX_CHANNELS.
 */
export const MAX_SESSION_BYTES = 4 << 20


/** The session of the frame being encoded or decoded (one frame at a time: no re-entry). */
export let session: CodecSession | undefined
/** The protocol version of the frame being encoded. */
let encodingVersion = 1

// ---- type numbers ----

/** Message type numbers (an enum: esbuild writes the numbers where they are used). */
export enum Type {
  HELLO = 0x01,
  SUBSCRIBE = 0x02,
  SUBMIT = 0x03,
  FETCH_STATE = 0x04,
  UNSUBSCRIBE = 0x05,
  SNAPSHOT_ACK = 0x06,
  PRESENCE_SET = 0x07,
  SUBMIT2 = 0x08,
  SUBMIT3 = 0x09,
  WELCOME = 0x40,
  REFUSED = 0x41,
  ENTRIES = 0x42,
  RESULTS = 0x43,
  SYNCED = 0x44,
  CHECKPOINT = 0x45,
  STATE = 0x46,
  ERROR = 0x47,
  SNAPSHOT_BEGIN = 0x48,
  SNAPSHOT_CHUNK = 0x49,
  SNAPSHOT_END = 0x4a,
  PRESENCE = 0x4b,
  KEEPALIVE = 0x4c,
  ENTRIES2 = 0x4d,
  RESULTS2 = 0x4e,
}

/**
 * The types a client sends, and the types the hub sends, as [first, last] (each side's types
 * are one run of numbers): a decoder refuses the other side's as not its own.
 */
export const CLIENT_TYPES: readonly [number, number] = [Type.HELLO, Type.SUBMIT3]
export const SERVER_TYPES: readonly [number, number] = [Type.WELCOME, Type.RESULTS2]

/** The types whose frames are optional (flags 1); every other type's flags are 0 (required). */
const OPTIONAL_TYPES: ReadonlyArray<number> = [Type.PRESENCE_SET, Type.PRESENCE, Type.KEEPALIVE]
/** The types protocol 2 added: a connection of protocol 1 does not know them. */
const V2_TYPES: ReadonlyArray<number> = [Type.SUBMIT2, Type.ENTRIES2, Type.RESULTS2]

/** The flags a frame of this type carries (exactly these: other bits are reserved). */
const flagsOf = (type: number): number => (OPTIONAL_TYPES.includes(type) ? 1 : 0)

// Globals read once: inside a vm context (jest) every global lookup on a hot path is slow.
const { isInteger, isSafeInteger, MAX_SAFE_INTEGER: MAX_UINT } = Number
export { isInteger, MAX_UINT }
const { isArray } = Array
const ErrorClass = Error
const Bytes = Uint8Array
export const TIME_LIMIT = 2 ** 52

// Append only: a code's position is its kind byte on the wire.
/** The outcome kind of `{ seqAtMost }` (after the rejection codes' kinds). */
export const SEQ_AT_MOST_KIND = 9
export const REJECTION_CODES: ReadonlyArray<WireRejectionCode> = [
  "rejected", "command-failed", "invalid-args", "unknown-command", "outcome-expired", "unauthorized", "state-unencodable", "command-too-large",
]
export const REFUSAL_CODES: ReadonlyArray<RefusalCode> = [
  "protocol-unsupported", "machine-unknown", "schema-too-old", "schema-too-new", "schema-mismatch", "unauthorized",
]

export const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(v))

const hex = (n: number): string => `0x${n.toString(16)}`

// ---- encoding ----

let writer = new ByteWriter(4096)
const nameTable = new Map<string, number>()

export const invalid = (message: string): never => {
  throw canonError("protocol-error", message)
}

/** A count or sequence number: a non-negative safe integer (written by the caller, as is or as a delta). */
export const checkUint = (n: number, what: string): void => {
  if (!isSafeInteger(n) || n < 0) invalid(`${what} must be an integer >= 0, not ${show(n)}.`)
}

export const uint = (w: ByteWriter, n: number, what: string): void => {
  checkUint(n, what)
  w.varint(n)
}

export const delta = (w: ByteWriter, d: number, what: string): void => {
  const z = d >= 0 ? d * 2 : -d * 2 - 1
  if (!(z <= MAX_UINT)) invalid(`${what} jumps too far (${d}).`)
  w.varint(z)
}

export const checkString = (s: unknown, what: string): void => {
  if (typeof s !== "string") invalid(`${what} must be a string, not ${show(s)}.`)
}

const frameTooLarge = (size: number, max: number): string => `A frame of ${size} bytes is over the limit of ${max} bytes.`

export const str = (w: ByteWriter, s: string, what: string): void => {
  checkString(s, what)
  w.string(s)
}

/** Starts a frame's name table (submit, entries: a name is defined once per frame). */
export const newNameTable = (): void => nameTable.clear()

export const name = (w: ByteWriter, s: string): void => {
  const k = nameTable.get(s)
  if (k !== undefined) {
    w.varint(k)
    return
  }
  checkString(s, "A command name")
  nameTable.set(s, nameTable.size + 1)
  w.byte(0)
  w.string(s)
}

export const list = <T>(w: ByteWriter, xs: ReadonlyArray<T>, what: string): ReadonlyArray<T> => {
  if (!isArray(xs)) invalid(`${what} must be an array.`)
  w.varint(xs.length)
  return xs
}

export const header = (w: ByteWriter, type: number): void => {
  w.reset()
  w.byte(type)
  w.byte(flagsOf(type))
}

const spoken = (v: number): boolean => isInteger(v) && v >= PROTOCOL_VERSIONS.min && v <= PROTOCOL_VERSIONS.max

const unspoken = (v: unknown): string => `Protocol ${show(v)} is not spoken here (${PROTOCOL_VERSIONS.min}..${PROTOCOL_VERSIONS.max}).`

/** Protocol 2: a document by its channel on this connection. */
export const channel = (w: ByteWriter, docId: string): void => {
  const c = session?.channelOf(docId)
  if (c === undefined) invalid(`Document ${show(docId)} has no channel: subscribe it on this session first.`)
  w.varint(c!)
}

export const compactArgs = (w: ByteWriter, args: unknown): void => {
  if (!isBytes(args)) invalid("Compact arguments must be bytes (args-codec.ts).")
  w.bytes(args as Uint8Array)
}

/** Compact frames exist from protocol 2 on. */
export const compactFor = (m: { readonly compact?: true }): boolean => {
  if (m.compact !== true) return false
  if (encodingVersion < 2) invalid(`Compact frames need protocol 2, not ${encodingVersion}.`)
  return true
}

/** One frame: `write` fills the writer (header first). Throws a CanonError if the protocol cannot carry the message. */
export const encodeFrame = <M>(m: M, options: CodecOptions | undefined, write: (w: ByteWriter, m: M) => void): Uint8Array => {
  const v = options?.version ?? 1
  if (!spoken(v)) invalid(unspoken(v))
  session = options?.session
  encodingVersion = v
  const w = writer
  try {
    write(w, m)
  } catch (e) {
    // Malformed input (a null where an object belongs...) surfaces as a CanonError too, not a TypeError.
    throw e instanceof CanonError ? e : canonError("protocol-error", `Cannot encode: ${errorText(e)}`)
  }
  const max = options?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  const size = w.pos
  // Do not keep a huge buffer alive after one huge frame.
  if (size > max || size > 1 << 20) writer = new ByteWriter(4096)
  if (size > max) invalid(frameTooLarge(size, max))
  return w.finish()
}

// ---- decoding ----

/** Thrown inside the decoder (no stack trace to capture), turned into a DecodeError at the top. */
class Fail {
  constructor(readonly code: DecodeErrorCode, readonly message: string) {}
}

export const bad = (message: string): never => {
  throw new Fail("bad-value", message)
}

/**
 * A count of items each taking at least `minBytes`: a count that cannot fit is refused before
 * allocating (`truncated`, by its sentence: READER_CODES).
 */
export { counted as count }

/**
 * The UTF-8 length of the string that starts here, refused if over `max` before the string is
 * decoded; the reader stays where it was (read the string next).
 */
export const boundedLength = (r: ByteReader, max: number, what: string): number => {
  const at = r.pos
  const n = r.varint()
  if (n > max) bad(`${what} of ${n} bytes is over the limit of ${max} bytes.`)
  r.pos = at
  return n
}

export { unzigzag }

/** `prev + 1 + delta`, which must be a non-negative safe integer. */
export const next = (r: ByteReader, prev: number, what: string): number => {
  const v = prev + 1 + unzigzag(r.varint())
  if (!(v >= 0 && v <= MAX_UINT)) bad(`${what} ${v} out of range.`)
  return v
}

export const optionalFields = (r: ByteReader, allowed: number): number => {
  const b = r.byte()
  if ((b & ~allowed) !== 0) bad(`Optional-field byte ${hex(b)} sets unknown fields.`)
  return b
}

/**
 * A frame's table of clientIds or command names, as the decoder builds it. A string is
 * defined once per frame (as the encoder does): a second definition is refused, so every
 * frame that decodes re-encodes, and the check stays linear however large the table.
 */
export class Table {
  readonly items: string[] = []
  #set: Set<string> | undefined
  readonly #what: string

  constructor(what: string) {
    this.#what = what
  }

  define(s: string): void {
    const items = this.items
    // Past 16 names, a set finds them without a scan.
    if (items.length < 16 ? items.includes(s) : (this.#set ??= new Set(items)).has(s)) bad(`${this.#what} ${show(s)} defined twice.`)
    this.#set?.add(s)
    items.push(s)
  }

  get(k: number): string {
    if (k > this.items.length) bad(`${this.#what} ${k} not defined.`)
    return this.items[k - 1]!
  }
}

export const readName = (r: ByteReader, names: Table): string => {
  const k = r.varint()
  if (k === 0) {
    const s = r.string()
    names.define(s)
    return s
  }
  return names.get(k)
}

/** Protocol 2: the document a channel names on this connection. */
export const readChannel = (r: ByteReader): string => {
  if (session === undefined) bad("Compact frame without a session.")
  const c = r.varint()
  const d = session!.docOf(c)
  if (d === undefined) bad(`Channel ${c} unknown.`)
  return d!
}

export type Reader<T> = (r: ByteReader) => T


/** The decode error codes of what the shared readers (core/bytes, core/canonical) throw, by its sentence (else bad-value). */
const READER_CODES: ReadonlyArray<readonly [RegExp, DecodeErrorCode]> = [
  [/^Unexpected end|runs past the end|cannot fit in/, "truncated"],
  [/^Varint/, "bad-varint"],
  [/UTF-8/, "bad-utf8"],
  [/nests deeper/, "too-deep"],
]

/** What went wrong in a decode, whatever threw it. */
const toFail = (e: unknown): Fail => {
  if (e instanceof Fail) return e
  if (e instanceof CanonError) return new Fail(READER_CODES.find(([sentence]) => sentence.test(e.message))?.[1] ?? "bad-value", e.message)
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new Fail("too-deep", "Nested too deeply.")
  return new Fail("bad-value", `Malformed frame: ${errorText(e)}`)
}

const failure = (code: DecodeErrorCode, message: string): { readonly ok: false; readonly error: DecodeError } =>
  ({ ok: false, error: new DecodeError({ code, message }) })

/** Decodes one frame of one direction: `readers` read its types, `others` are the other direction's. */
export const decodeFrame = <T>(
  frame: Uint8Array,
  options: CodecOptions | undefined,
  readers: ReadonlyMap<number, Reader<T>>,
  others: readonly [number, number],
  side: string,
): Decoded<T> => {
  // A decode error is the peer's doing, not a bug here: no stack trace to capture (a flood of
  // garbage frames must cost little), for DecodeError and for what the shared readers throw.
  const stackTraceLimit = ErrorClass.stackTraceLimit
  ErrorClass.stackTraceLimit = 0
  try {
    const version = options?.version ?? 1
    if (!spoken(version)) return failure("unsupported-version", unspoken(version))
    session = options?.session
    if (!isBytes(frame)) return failure("bad-value", "A frame must be a Uint8Array.")
    const max = options?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    if (frame.length > max) return failure("too-large", frameTooLarge(frame.length, max))
    if (frame.length < 2) return frame.length ? failure("truncated", "No flags byte.") : failure("empty", "Empty frame.")
    // A plain Uint8Array view (a Buffer's slice() would alias the frame instead of copying).
    const bytes = frame.constructor === Bytes ? frame : new Bytes(frame.buffer, frame.byteOffset, frame.byteLength)
    const type = bytes[0]!
    const flags = bytes[1]!
    // A type newer than the connection's version is unknown to it, as to an older peer.
    const read = (version >= 2 || !V2_TYPES.includes(type)) && (version >= 3 || type !== Type.SUBMIT3) ? readers.get(type) : undefined
    if (read === undefined) {
      const other = type >= others[0] && type <= others[1]
      if (!other && flags & 1) return { ok: "ignore", type }
      return failure("unknown-type", other ? `Type ${hex(type)} is not a ${side} message.` : `Unknown type ${hex(type)}.`)
    }
    if (flags !== flagsOf(type)) return failure("bad-value", `Flags ${hex(flags)} on type ${hex(type)}.`)
    const r = new ByteReader(bytes)
    r.pos = 2
    const message = read(r)
    if (r.remaining > 0) return failure("trailing-bytes", `${r.remaining} bytes after type ${hex(type)}.`)
    return { ok: true, message }
  } catch (e) {
    const fail = toFail(e)
    return failure(fail.code, fail.message)
  } finally {
    ErrorClass.stackTraceLimit = stackTraceLimit
  }
}
