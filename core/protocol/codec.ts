/**
 * The binary codec of the wire protocol: the only module that knows how messages look as
 * bytes. This header is the protocol's specification; test/fixtures/protocol/v1/ holds the
 * golden frames that pin it (a change to v1 bytes is a new protocol version, never an edit).
 *
 * ## Primitives
 *
 * - `u`      unsigned LEB128 varint, an integer in [0, 2^53) (at most 8 bytes).
 * - `z`      zigzag varint of a signed delta d in [-2^52, 2^52): `u(d >= 0 ? 2d : -2d - 1)`.
 *            (Delta-coded values below 2^52 always fit.)
 * - `str`    `u` byte length, then that many bytes of UTF-8.
 * - `bytes`  `u` length, then the raw bytes.
 * - `val`    one canonical value (core/canonical.ts: tagged, sorted keys, max depth 512).
 *            Command args and presence state use it.
 * - `byte`   one byte.
 * - `opt`    one byte whose bit i says whether optional field i follows; other bits are 0.
 *
 * ## Frame
 *
 *     byte type | byte flags | body
 *
 * Flags bit 0 = optional: a peer that does not know the type ignores the frame (decoders
 * return `{ ok: "ignore" }`); an unknown type without it is an `unknown-type` error. Other
 * bits are reserved: a known type must carry exactly its flags below. Client and server
 * types are disjoint; a type of the other direction is an `unknown-type` error. A body must
 * be consumed exactly (`trailing-bytes` otherwise). Every v1 type is required (flags 0)
 * except presence messages (flags 1).
 *
 * The handshake frames (hello, welcome, refused) are read before a version is agreed:
 * their layout is the same in every protocol version. A version does not travel in other
 * frames: both sides use the one the handshake settled (`CodecOptions.version`).
 *
 * ## Client -> hub
 *
 *     0x01 hello          u protocol.min, u protocol.max, str clientId,
 *                         u n, n x (str name, u version, str fingerprint),
 *                         opt (bit 0: credentials, bit 1: secret), [str credentials], [str secret]
 *                           (bit 1 was added compatibly: the secret proving the clientId)
 *     0x02 subscribe      str docId, str machine, u version, str fingerprint, u fromSeq, u ackedClientSeq
 *     0x03 submit         str docId, u ackedClientSeq, u n, n x command
 *                           command = clientSeq, name, val args
 *                           clientSeq: the first as u; each next as z(clientSeq - previous - 1)
 *                           name: u k; k = 0: str name follows and joins this frame's name
 *                           table; k >= 1: the table's (k-1)th name. A name is defined once
 *                           per frame (a second definition is bad-value).
 *     0x04 fetch-state    str docId
 *     0x05 unsubscribe    str docId
 *     0x06 snapshot-ack   str docId, u snapshotId, u received
 *     0x07 presence-set   (optional) str docId, val state
 *
 * ## Hub -> client
 *
 *     0x40 welcome        u protocol, str clientId
 *     0x41 refused        str code (a RefusalCode), str message,
 *                         opt (bit 0: protocol, bit 1: machine), [u min, u max], [str machine]
 *     0x42 entries        str docId, u n, [if n > 0: u firstSeq, n x entry],
 *                         opt (bit 0: checkpoint), [u checkpoint.seq, str checkpoint.hash]
 *                           seqs are contiguous: entry i has seq firstSeq + i (not written)
 *                           entry = client, name, z time, val args
 *                           client: u c; c = 0: str clientId, u clientSeq follow and the
 *                           clientId joins this frame's client table (once per clientId);
 *                           c >= 1: the table's (c-1)th clientId, then z(clientSeq - that
 *                           client's previous clientSeq in this frame - 1)
 *                           name: as in submit (a name table per frame)
 *                           time: z(time - previous entry's time), the first from 0;
 *                           times are integers in [0, 2^52)
 *     0x43 results        str docId, u n, n x outcome
 *                           outcome = clientSeq (as in submit), byte kind, then
 *                           kind 0: accepted, z(seq - previous accepted seq in this frame),
 *                                   the first from 0
 *                           kind 1..8: rejected with code rejected, command-failed,
 *                                   invalid-args, unknown-command, outcome-expired,
 *                                   unauthorized, state-unencodable, command-too-large
 *                                   (in that order; 7 and 8 were added compatibly), str message
 *                           kind 9 (added compatibly): the outcome is no longer kept; the
 *                                   command was settled at or before seq: u seqAtMost
 *     0x44 synced         str docId, u seq
 *     0x45 checkpoint     str docId, u seq, str hash
 *     0x46 state          str docId, u seq, str hash, bytes state
 *     0x47 error          str code, str message, opt (bit 0: docId, bit 1: seq), [str docId], [u seq]
 *                           (bit 1 was added compatibly: the sequence number the error is
 *                           about, e.g. where a client's clientSeqs must resume)
 *     0x48 snapshot-begin str docId, u snapshotId, u seq, str hash, u size
 *     0x49 snapshot-chunk str docId, u snapshotId, u offset, bytes
 *     0x4a snapshot-end   str docId, u snapshotId
 *     0x4b presence       (optional) str docId, str clientId, val state
 *     0x4c keepalive      (optional) no body
 *
 * ## Protocol 2
 *
 * Everything above, plus compact forms of the three hot messages. Their frames depend on
 * the connection (`CodecSession`): the n-th document subscribed on a connection is its channel
 * n (both ends count subscribe frames as they pass), command names in submits are defined once
 * per connection, and the client's own clientId (from its hello) names its elided entries.
 * Arguments are the bytes of their schema-driven encoding (core/protocol/args-codec.ts).
 * A peer speaks them only once version 2 was agreed; a frame that a session cannot resolve
 * (an unknown channel, an undefined name) is `bad-value`.
 *
 *     0x08 submit2        u channel, u ackedClientSeq, u n, n x command
 *                           command = clientSeq (as in submit), name2, bytes args
 *                           name2: u k; k = 0: str name follows and joins the connection's
 *                           name table; k >= 1: the table's k-th name
 *     0x4d entries2       u channel, u n, [if n > 0: u firstSeq, n x entry2], opt (bit 0:
 *                         checkpoint), [u checkpoint.seq, str checkpoint.hash]
 *                           entry2 = u head, then
 *                             head 0: the receiver's own command: u clientSeq, z time
 *                             head 1: a client new to this frame: str clientId, u clientSeq,
 *                                     name, z time, bytes args
 *                             head 2 + k: the frame's (k+1)th client: z(clientSeq - its previous
 *                                     clientSeq in this frame - 1), name, z time, bytes args
 *                           name and time as in entries
 *     0x4e results2       u channel, then as results after its docId
 *
 * ## Failures
 *
 * Decoding never throws: a frame is a message, `ignore`, or a `DecodeError` with a code.
 * Frames over `maxFrameBytes` are refused before parsing, and every count and length is
 * checked against the bytes left before anything is allocated, so a decode allocates in
 * proportion to its frame. Bytes fields are copies (never views of the frame, which the
 * transport may reuse). A DecodeError carries no stack trace: it is the peer's doing, and a
 * flood of garbage must stay cheap. Decoders check shapes, not meaning (a range with
 * min > max or a checkpoint outside its batch decode; the engine judges them).
 *
 * Encoding throws a `CanonError`: `protocol-error` for a message the protocol cannot carry
 * (a negative or fractional seq, non-contiguous entries, a delta out of range, a frame over
 * `maxFrameBytes`...), `state-unencodable` for args or state that are not plain data (and,
 * from core/bytes, for a string holding a lone UTF-16 surrogate, which has no UTF-8 form).
 */
import * as Data from "effect/Data"
import { ByteReader, ByteWriter } from "../bytes.js"
import { isBytes, readValue, writeValue } from "../canonical.js"
import { CanonError, canonError, type Rejection, type RejectionCode } from "../errors.js"
import type { CommandRequest, Entry, Outcome } from "../entry.js"
import type {
  ClientMessage, Entries, ErrorMsg, Hello, MachineInfo, RefusalCode, Refused, Results, ServerMessage, Submit,
} from "./messages.js"

// ---- public API ----

/** The protocol versions this build speaks. */
export const PROTOCOL_VERSIONS: { readonly min: 1; readonly max: 2 } = { min: 1, max: 2 }

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
 */
export class CodecSession {
  clientId: string | undefined
  private readonly channels = new Map<string, number>()
  private readonly docs: string[] = []
  /** Names this end defined for the other. */
  readonly namesSent = new Map<string, number>()
  /** Names the other end defined. */
  readonly namesReceived: string[] = []

  /** Counts a subscribe: a new document gets the next channel. Returns false past the limit. */
  subscribed(docId: string): boolean {
    if (this.channels.has(docId)) return true
    if (this.docs.length >= MAX_CHANNELS) return false
    this.docs.push(docId)
    this.channels.set(docId, this.docs.length)
    return true
  }

  channelOf(docId: string): number | undefined {
    return this.channels.get(docId)
  }

  docOf(channel: number): string | undefined {
    return this.docs[channel - 1]
  }
}

/** Documents one connection may subscribe to over its life (channels are never reused). */
const MAX_CHANNELS = 65_536
/** Command names one end may define on a connection. */
const MAX_NAMES = 4096

/** The session of the frame being encoded or decoded (one frame at a time: no re-entry). */
let session: CodecSession | undefined
/** The protocol version of the frame being encoded. */
let encodingVersion = 1

// ---- type numbers ----

const HELLO = 0x01
const SUBSCRIBE = 0x02
const SUBMIT = 0x03
const FETCH_STATE = 0x04
const UNSUBSCRIBE = 0x05
const SNAPSHOT_ACK = 0x06
const PRESENCE_SET = 0x07
const SUBMIT2 = 0x08

const WELCOME = 0x40
const REFUSED = 0x41
const ENTRIES = 0x42
const RESULTS = 0x43
const SYNCED = 0x44
const CHECKPOINT = 0x45
const STATE = 0x46
const ERROR = 0x47
const SNAPSHOT_BEGIN = 0x48
const SNAPSHOT_CHUNK = 0x49
const SNAPSHOT_END = 0x4a
const PRESENCE = 0x4b
const KEEPALIVE = 0x4c
const ENTRIES2 = 0x4d
const RESULTS2 = 0x4e

const REQUIRED = 0
const OPTIONAL = 1

// Globals read once: inside a vm context (jest) every global lookup on a hot path is slow.
const { isInteger, isSafeInteger, MAX_SAFE_INTEGER: MAX_UINT } = Number
const { isArray } = Array
const ErrorClass = Error
const Bytes = Uint8Array
const TIME_LIMIT = 2 ** 52

// Append only: a code's position is its kind byte on the wire.
/** The outcome kind of `{ seqAtMost }` (after the rejection codes' kinds). */
const SEQ_AT_MOST_KIND = 9
const REJECTION_CODES: ReadonlyArray<RejectionCode> = [
  "rejected", "command-failed", "invalid-args", "unknown-command", "outcome-expired", "unauthorized", "state-unencodable", "command-too-large",
]
const REFUSAL_CODES: ReadonlyArray<RefusalCode> = [
  "protocol-unsupported", "machine-unknown", "schema-too-old", "schema-too-new", "schema-mismatch", "unauthorized",
]

// ---- encoding ----

let writer = new ByteWriter(4096)
const clientTable = new Map<string, number>()
const nameTable = new Map<string, number>()
const lastClientSeq: number[] = []

const invalid = (message: string): never => {
  throw canonError("protocol-error", message)
}

const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(v))

const uint = (w: ByteWriter, n: number, what: string): void => {
  if (!isSafeInteger(n) || n < 0) invalid(`${what} must be a non-negative integer, not ${show(n)}.`)
  w.varint(n)
}

const delta = (w: ByteWriter, d: number, what: string): void => {
  const z = d >= 0 ? d * 2 : -d * 2 - 1
  if (!(z <= MAX_UINT)) invalid(`${what} is too far from the previous one to encode (${d}).`)
  w.varint(z)
}

const str = (w: ByteWriter, s: string, what: string): void => {
  if (typeof s !== "string") invalid(`${what} must be a string, not ${show(s)}.`)
  w.string(s)
}

const name = (w: ByteWriter, s: string): void => {
  const k = nameTable.get(s)
  if (k !== undefined) {
    w.varint(k)
    return
  }
  if (typeof s !== "string") invalid(`A command name must be a string, not ${show(s)}.`)
  nameTable.set(s, nameTable.size + 1)
  w.byte(0)
  w.string(s)
}

const list = <T>(w: ByteWriter, xs: ReadonlyArray<T>, what: string): ReadonlyArray<T> => {
  if (!isArray(xs)) invalid(`${what} must be an array.`)
  w.varint(xs.length)
  return xs
}

const header = (w: ByteWriter, type: number, flags: number): void => {
  w.reset()
  w.byte(type)
  w.byte(flags)
}

const spoken = (v: number): boolean => isInteger(v) && v >= PROTOCOL_VERSIONS.min && v <= PROTOCOL_VERSIONS.max

const unspoken = (v: unknown): string => `Protocol version ${show(v)} is not spoken here (${PROTOCOL_VERSIONS.min}..${PROTOCOL_VERSIONS.max}).`

const checkVersion = (options: CodecOptions | undefined): void => {
  const v = options?.version ?? 1
  if (!spoken(v)) invalid(unspoken(v))
}

const finish = (w: ByteWriter, options: CodecOptions | undefined): Uint8Array => {
  const max = options?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  if (w.pos > max) {
    const size = w.pos
    writer = new ByteWriter(4096)
    invalid(`A frame of ${size} bytes is over the limit of ${max} bytes.`)
  }
  const out = w.finish()
  // Do not keep a huge buffer alive after one huge frame.
  if (w.pos > 1 << 20) writer = new ByteWriter(4096)
  return out
}

const writeHello = (w: ByteWriter, m: Hello): void => {
  uint(w, m.protocol.min, "protocol.min")
  uint(w, m.protocol.max, "protocol.max")
  str(w, m.clientId, "clientId")
  const ms = list(w, m.machines, "machines")
  for (let i = 0; i < ms.length; i++) {
    const x: MachineInfo = ms[i]!
    str(w, x.name, "A machine's name")
    uint(w, x.version, "A machine's version")
    str(w, x.fingerprint, "A machine's fingerprint")
  }
  w.byte((m.credentials !== undefined ? 1 : 0) | (m.secret !== undefined ? 2 : 0))
  if (m.credentials !== undefined) str(w, m.credentials, "credentials")
  if (m.secret !== undefined) str(w, m.secret, "secret")
}

/** Protocol 2: a document by its channel on this connection. */
const channel = (w: ByteWriter, docId: string): void => {
  const c = session?.channelOf(docId)
  if (c === undefined) invalid(`Document ${show(docId)} has no channel on this connection: a compact frame needs a session that saw its subscribe.`)
  w.varint(c!)
}

/** Protocol 2: a command name defined once per connection. */
const sessionName = (w: ByteWriter, s: string): void => {
  const names = session!.namesSent
  const k = names.get(s)
  if (k !== undefined) return w.varint(k)
  if (typeof s !== "string") invalid(`A command name must be a string, not ${show(s)}.`)
  if (names.size >= MAX_NAMES) invalid(`More than ${MAX_NAMES} command names on one connection.`)
  names.set(s, names.size + 1)
  w.byte(0)
  w.string(s)
}

const compactArgs = (w: ByteWriter, args: unknown): void => {
  if (!isBytes(args)) invalid("A compact frame's arguments are bytes (core/protocol/args-codec.ts).")
  w.bytes(args as Uint8Array)
}

/** Compact frames exist from protocol 2 on. */
const compactFor = (m: { readonly compact?: true }): boolean => {
  if (m.compact !== true) return false
  if (encodingVersion < 2) invalid(`Compact frames need protocol 2; this connection speaks ${encodingVersion}.`)
  return true
}

const writeSubmit = (w: ByteWriter, m: Submit): void => {
  const compact = compactFor(m)
  if (compact) channel(w, m.docId)
  else str(w, m.docId, "docId")
  uint(w, m.ackedClientSeq, "ackedClientSeq")
  const cs: ReadonlyArray<CommandRequest> = list(w, m.commands, "commands")
  nameTable.clear()
  let prev = 0
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i]!
    const seq = c.clientSeq
    if (!isSafeInteger(seq) || seq < 0) invalid(`A clientSeq must be a non-negative integer, not ${show(seq)}.`)
    if (i === 0) w.varint(seq)
    else delta(w, seq - prev - 1, "A clientSeq")
    prev = seq
    if (compact) {
      sessionName(w, c.name)
      compactArgs(w, c.args)
    } else {
      name(w, c.name)
      writeValue(w, c.args)
    }
  }
}

const writeEntries = (w: ByteWriter, m: Entries): void => {
  const compact = compactFor(m)
  if (compact) channel(w, m.docId)
  else str(w, m.docId, "docId")
  const elide = compact ? m.elide : undefined
  const es: ReadonlyArray<Entry> = list(w, m.entries, "entries")
  if (es.length > 0) {
    const first = es[0]!.seq
    uint(w, first, "An entry's seq")
    if (es.length - 1 > MAX_UINT - first) invalid("Entry seqs run past 2^53 - 1.")
    clientTable.clear()
    nameTable.clear()
    let time = 0
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!
      if (e.seq !== first + i) invalid(`Entries must have contiguous seqs: ${show(e.seq)} follows ${first + i - 1}.`)
      const cs = e.clientSeq
      if (!isSafeInteger(cs) || cs < 0) invalid(`A clientSeq must be a non-negative integer, not ${show(cs)}.`)
      const t = e.time
      if (!isInteger(t) || t < 0 || t >= TIME_LIMIT) invalid(`An entry's time must be an integer in [0, 2^52), not ${show(t)}.`)
      if (compact && (e.elided === true || elide?.has(e.seq) === true)) {
        // The receiver's own command: it holds the name and arguments.
        w.byte(0)
        w.varint(cs)
        delta(w, t - time, "An entry's time")
        time = t
        continue
      }
      const c = clientTable.get(e.clientId)
      // Client heads: v1 0 new, 1 + k the k-th; compact 1 new, 2 + k (0 is an elided entry).
      const base = compact ? 1 : 0
      if (c === undefined) {
        if (typeof e.clientId !== "string") invalid(`A clientId must be a string, not ${show(e.clientId)}.`)
        clientTable.set(e.clientId, clientTable.size)
        lastClientSeq[clientTable.size - 1] = cs
        w.varint(base)
        w.string(e.clientId)
        w.varint(cs)
      } else {
        w.varint(base + c + 1)
        delta(w, cs - lastClientSeq[c]! - 1, "A clientSeq")
        lastClientSeq[c] = cs
      }
      name(w, e.name)
      delta(w, t - time, "An entry's time")
      time = t
      if (compact) compactArgs(w, e.args)
      else writeValue(w, e.args)
    }
  }
  const cp = m.checkpoint
  if (cp === undefined) w.byte(0)
  else {
    w.byte(1)
    uint(w, cp.seq, "checkpoint.seq")
    str(w, cp.hash, "checkpoint.hash")
  }
}

const writeResults = (w: ByteWriter, m: Results): void => {
  if (compactFor(m)) channel(w, m.docId)
  else str(w, m.docId, "docId")
  const os: ReadonlyArray<Outcome> = list(w, m.outcomes, "outcomes")
  let prevClientSeq = 0
  let prevSeq = 0
  for (let i = 0; i < os.length; i++) {
    const o = os[i]!
    const cs = o.clientSeq
    if (!isSafeInteger(cs) || cs < 0) invalid(`A clientSeq must be a non-negative integer, not ${show(cs)}.`)
    if (i === 0) w.varint(cs)
    else delta(w, cs - prevClientSeq - 1, "A clientSeq")
    prevClientSeq = cs
    if ("seq" in o) {
      const seq = o.seq
      if (!isSafeInteger(seq) || seq < 0) invalid(`An outcome's seq must be a non-negative integer, not ${show(seq)}.`)
      w.byte(0)
      delta(w, seq - prevSeq, "An outcome's seq")
      prevSeq = seq
    } else if ("seqAtMost" in o) {
      w.byte(SEQ_AT_MOST_KIND)
      uint(w, o.seqAtMost, "seqAtMost")
    } else {
      const r: Rejection | undefined = o.rejection
      const k = REJECTION_CODES.indexOf(r?.code)
      if (k < 0) invalid(`Unknown rejection code ${show(r?.code)}.`)
      w.byte(k + 1)
      str(w, r!.message, "A rejection's message")
    }
  }
}

const writeRefused = (w: ByteWriter, m: Refused): void => {
  if (!REFUSAL_CODES.includes(m.code)) invalid(`Unknown refusal code ${show(m.code)}.`)
  w.string(m.code)
  str(w, m.message, "message")
  w.byte((m.protocol !== undefined ? 1 : 0) | (m.machine !== undefined ? 2 : 0))
  if (m.protocol !== undefined) {
    uint(w, m.protocol.min, "protocol.min")
    uint(w, m.protocol.max, "protocol.max")
  }
  if (m.machine !== undefined) str(w, m.machine, "machine")
}

const writeClient = (w: ByteWriter, m: ClientMessage): void => {
  switch (m.type) {
    case "hello":
      header(w, HELLO, REQUIRED)
      writeHello(w, m)
      if (session !== undefined) session.clientId = m.clientId
      return
    case "subscribe":
      header(w, SUBSCRIBE, REQUIRED)
      str(w, m.docId, "docId")
      if (session !== undefined && !session.subscribed(m.docId)) invalid(`A connection may subscribe to at most ${MAX_CHANNELS} documents over its life; reconnect.`)
      str(w, m.machine, "machine")
      uint(w, m.version, "version")
      str(w, m.fingerprint, "fingerprint")
      uint(w, m.fromSeq, "fromSeq")
      uint(w, m.ackedClientSeq, "ackedClientSeq")
      return
    case "submit":
      header(w, m.compact === true ? SUBMIT2 : SUBMIT, REQUIRED)
      writeSubmit(w, m)
      return
    case "fetch-state":
      header(w, FETCH_STATE, REQUIRED)
      str(w, m.docId, "docId")
      return
    case "unsubscribe":
      header(w, UNSUBSCRIBE, REQUIRED)
      str(w, m.docId, "docId")
      return
    case "snapshot-ack":
      header(w, SNAPSHOT_ACK, REQUIRED)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      uint(w, m.received, "received")
      return
    case "presence-set":
      header(w, PRESENCE_SET, OPTIONAL)
      str(w, m.docId, "docId")
      writeValue(w, m.state)
      return
    default:
      invalid(`Not a client message type: ${show((m as { type?: unknown } | null)?.type)}.`)
  }
}

const writeServer = (w: ByteWriter, m: ServerMessage): void => {
  switch (m.type) {
    case "welcome":
      header(w, WELCOME, REQUIRED)
      uint(w, m.protocol, "protocol")
      str(w, m.clientId, "clientId")
      return
    case "refused":
      header(w, REFUSED, REQUIRED)
      writeRefused(w, m)
      return
    case "entries":
      header(w, m.compact === true ? ENTRIES2 : ENTRIES, REQUIRED)
      writeEntries(w, m)
      return
    case "results":
      header(w, m.compact === true ? RESULTS2 : RESULTS, REQUIRED)
      writeResults(w, m)
      return
    case "synced":
      header(w, SYNCED, REQUIRED)
      str(w, m.docId, "docId")
      uint(w, m.seq, "seq")
      return
    case "checkpoint":
      header(w, CHECKPOINT, REQUIRED)
      str(w, m.docId, "docId")
      uint(w, m.seq, "seq")
      str(w, m.hash, "hash")
      return
    case "state":
      header(w, STATE, REQUIRED)
      str(w, m.docId, "docId")
      uint(w, m.seq, "seq")
      str(w, m.hash, "hash")
      if (!isBytes(m.state)) invalid("state must be a Uint8Array.")
      w.bytes(m.state)
      return
    case "error":
      header(w, ERROR, REQUIRED)
      str(w, m.code, "code")
      str(w, m.message, "message")
      w.byte((m.docId !== undefined ? 1 : 0) | (m.seq !== undefined ? 2 : 0))
      if (m.docId !== undefined) str(w, m.docId, "docId")
      if (m.seq !== undefined) uint(w, m.seq, "seq")
      return
    case "snapshot-begin":
      header(w, SNAPSHOT_BEGIN, REQUIRED)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      uint(w, m.seq, "seq")
      str(w, m.hash, "hash")
      uint(w, m.size, "size")
      return
    case "snapshot-chunk":
      header(w, SNAPSHOT_CHUNK, REQUIRED)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      uint(w, m.offset, "offset")
      if (!isBytes(m.bytes)) invalid("bytes must be a Uint8Array.")
      w.bytes(m.bytes)
      return
    case "snapshot-end":
      header(w, SNAPSHOT_END, REQUIRED)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      return
    case "presence":
      header(w, PRESENCE, OPTIONAL)
      str(w, m.docId, "docId")
      str(w, m.clientId, "clientId")
      writeValue(w, m.state)
      return
    case "keepalive":
      header(w, KEEPALIVE, OPTIONAL)
      return
    default:
      invalid(`Not a server message type: ${show((m as { type?: unknown } | null)?.type)}.`)
  }
}

/** Malformed input (a null where an object belongs...) surfaces as a CanonError too, not a TypeError. */
const asEncodeError = (e: unknown): CanonError =>
  e instanceof CanonError ? e : canonError("protocol-error", `Cannot encode the message: ${e instanceof Error ? e.message : String(e)}`)

/** The frame of a client message. Throws a CanonError if the protocol cannot carry it. */
export const encodeClientMessage = (m: ClientMessage, options?: CodecOptions): Uint8Array => {
  checkVersion(options)
  session = options?.session
  encodingVersion = options?.version ?? 1
  const w = writer
  try {
    writeClient(w, m)
  } catch (e) {
    throw asEncodeError(e)
  }
  return finish(w, options)
}

/** The frame of a server message. Throws a CanonError if the protocol cannot carry it. */
export const encodeServerMessage = (m: ServerMessage, options?: CodecOptions): Uint8Array => {
  checkVersion(options)
  session = options?.session
  encodingVersion = options?.version ?? 1
  const w = writer
  try {
    writeServer(w, m)
  } catch (e) {
    throw asEncodeError(e)
  }
  return finish(w, options)
}

// ---- decoding ----

/** Thrown inside the decoder (no stack trace to capture), turned into a DecodeError at the top. */
class Fail {
  constructor(readonly code: DecodeErrorCode, readonly message: string) {}
}

const bad = (message: string): never => {
  throw new Fail("bad-value", message)
}

/** A count of items each taking at least `minBytes`: a count that cannot fit is refused before allocating. */
const count = (r: ByteReader, minBytes: number, what: string): number => {
  const n = r.varint()
  if (n * minBytes > r.remaining) throw new Fail("truncated", `${n} ${what} cannot fit in the ${r.remaining} bytes left.`)
  return n
}

const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2)

/** A subscribe's docId: the session counts it (it may get the next channel). */
const subscribedDoc = (docId: string): string => {
  if (session !== undefined && !session.subscribed(docId)) bad(`A connection may subscribe to at most ${MAX_CHANNELS} documents over its life.`)
  return docId
}

/** `prev + 1 + delta`, which must be a non-negative safe integer. */
const next = (r: ByteReader, prev: number, what: string): number => {
  const v = prev + 1 + unzigzag(r.varint())
  if (!(v >= 0 && v <= MAX_UINT)) bad(`${what} out of range (${v}).`)
  return v
}

const optionalFields = (r: ByteReader, allowed: number): number => {
  const b = r.byte()
  if ((b & ~allowed) !== 0) bad(`Optional-field byte 0x${b.toString(16)} sets unknown fields.`)
  return b
}

/**
 * A frame's table of clientIds or command names, as the decoder builds it. A string is
 * defined once per frame (as the encoder does): a second definition is refused, so every
 * frame that decodes re-encodes, and the check stays linear however large the table.
 */
class Table {
  readonly items: string[] = []
  private set: Set<string> | undefined

  constructor(private readonly what: string) {}

  define(s: string): void {
    const items = this.items
    if (items.length < 16) {
      if (items.includes(s)) bad(`${this.what} ${show(s)} is defined twice in one frame.`)
    } else {
      const set = (this.set ??= new Set(items))
      if (set.has(s)) bad(`${this.what} ${show(s)} is defined twice in one frame.`)
      set.add(s)
    }
    items.push(s)
  }

  get(k: number): string {
    if (k > this.items.length) bad(`${this.what} reference ${k} but only ${this.items.length} defined so far.`)
    return this.items[k - 1]!
  }
}

const readName = (r: ByteReader, names: Table): string => {
  const k = r.varint()
  if (k === 0) {
    const s = r.string()
    names.define(s)
    return s
  }
  return names.get(k)
}

const readHello = (r: ByteReader): Hello => {
  const hello = readHelloFields(r)
  if (session !== undefined) session.clientId = hello.clientId
  return hello
}

const readHelloFields = (r: ByteReader): Hello => {
  const min = r.varint()
  const max = r.varint()
  const clientId = r.string()
  const n = count(r, 3, "machines")
  const machines: MachineInfo[] = new Array(n)
  for (let i = 0; i < n; i++) machines[i] = { name: r.string(), version: r.varint(), fingerprint: r.string() }
  const opt = optionalFields(r, 3)
  const hello: { -readonly [K in keyof Hello]: Hello[K] } = { type: "hello", protocol: { min, max }, clientId, machines }
  if (opt & 1) hello.credentials = r.string()
  if (opt & 2) hello.secret = r.string()
  return hello
}

/** Protocol 2: the document a channel names on this connection. */
const readChannel = (r: ByteReader): string => {
  if (session === undefined) bad("A compact frame on a connection without a session.")
  const c = r.varint()
  const d = session!.docOf(c)
  if (d === undefined) bad(`Channel ${c} names no document on this connection.`)
  return d!
}

/** Protocol 2: a command name defined once per connection. */
const readSessionName = (r: ByteReader): string => {
  const names = session!.namesReceived
  const k = r.varint()
  if (k !== 0) {
    if (k > names.length) bad(`Command name ${k} was never defined on this connection.`)
    return names[k - 1]!
  }
  const s = r.string()
  if (names.length >= MAX_NAMES) bad(`More than ${MAX_NAMES} command names on one connection.`)
  if (names.includes(s)) bad(`Command name ${show(s)} is defined twice on one connection.`)
  names.push(s)
  return s
}

const readSubmit2 = (r: ByteReader): Submit => {
  const docId = readChannel(r)
  const ackedClientSeq = r.varint()
  const n = count(r, 3, "commands")
  const commands: CommandRequest[] = new Array(n)
  let clientSeq = 0
  for (let i = 0; i < n; i++) {
    clientSeq = i === 0 ? r.varint() : next(r, clientSeq, "A clientSeq")
    commands[i] = { clientSeq, name: readSessionName(r), args: r.bytes() }
  }
  return { type: "submit", docId, commands, ackedClientSeq, compact: true }
}

const readSubmit = (r: ByteReader): Submit => {
  const docId = r.string()
  const ackedClientSeq = r.varint()
  const n = count(r, 3, "commands")
  const commands: CommandRequest[] = new Array(n)
  const names = new Table("Command name")
  let clientSeq = 0
  for (let i = 0; i < n; i++) {
    clientSeq = i === 0 ? r.varint() : next(r, clientSeq, "A clientSeq")
    const name = readName(r, names)
    commands[i] = { clientSeq, name, args: readValue(r) }
  }
  return { type: "submit", docId, commands, ackedClientSeq }
}

const readEntries = (r: ByteReader): Entries => readEntriesBody(r, r.string(), false)
const readEntries2 = (r: ByteReader): Entries => readEntriesBody(r, readChannel(r), true)

const readEntriesBody = (r: ByteReader, docId: string, compact: boolean): Entries => {
  // An elided entry takes 3 bytes at least; a full one 5.
  const n = count(r, compact ? 3 : 5, "entries")
  const entries: Entry[] = new Array(n)
  if (n > 0) {
    const first = r.varint()
    if (n - 1 > MAX_UINT - first) bad("Entry seqs run past 2^53 - 1.")
    const clients = new Table("ClientId")
    const last: number[] = []
    const names = new Table("Command name")
    let time = 0
    for (let i = 0; i < n; i++) {
      let c = r.varint()
      if (compact) {
        if (c === 0) {
          // The receiver's own command: it holds the name and arguments.
          const own = session!.clientId
          if (own === undefined) bad("An elided entry on a connection that said no hello.")
          const clientSeq = r.varint()
          time += unzigzag(r.varint())
          if (!(time >= 0 && time < TIME_LIMIT)) bad(`An entry's time is out of range (${time}).`)
          entries[i] = { seq: first + i, time, clientId: own!, clientSeq, name: "", args: null, elided: true }
          continue
        }
        c -= 1
      }
      let clientId: string
      let clientSeq: number
      if (c === 0) {
        clientId = r.string()
        clientSeq = r.varint()
        clients.define(clientId)
        last.push(clientSeq)
      } else {
        clientId = clients.get(c)
        clientSeq = next(r, last[c - 1]!, "A clientSeq")
        last[c - 1] = clientSeq
      }
      const name = readName(r, names)
      time += unzigzag(r.varint())
      if (!(time >= 0 && time < TIME_LIMIT)) bad(`An entry's time is out of range (${time}).`)
      entries[i] = { seq: first + i, time, clientId, clientSeq, name, args: compact ? r.bytes() : readValue(r) }
    }
  }
  const opt = optionalFields(r, 1)
  const m: { -readonly [K in keyof Entries]: Entries[K] } = { type: "entries", docId, entries }
  if (opt & 1) m.checkpoint = { seq: r.varint(), hash: r.string() }
  if (compact) m.compact = true
  return m
}

const readResults = (r: ByteReader): Results => readResultsBody(r, r.string())
const readResults2 = (r: ByteReader): Results => ({ ...readResultsBody(r, readChannel(r)), compact: true })

const readResultsBody = (r: ByteReader, docId: string): Results => {
  const n = count(r, 3, "outcomes")
  const outcomes: Outcome[] = new Array(n)
  let clientSeq = 0
  let seq = 0
  for (let i = 0; i < n; i++) {
    clientSeq = i === 0 ? r.varint() : next(r, clientSeq, "A clientSeq")
    const kind = r.byte()
    if (kind === 0) {
      seq = next(r, seq - 1, "An outcome's seq")
      outcomes[i] = { clientSeq, seq }
    } else if (kind === SEQ_AT_MOST_KIND) {
      outcomes[i] = { clientSeq, seqAtMost: r.varint() }
    } else {
      const code = REJECTION_CODES[kind - 1]
      if (code === undefined) bad(`Unknown outcome kind ${kind}.`)
      outcomes[i] = { clientSeq, rejection: { code: code!, message: r.string() } }
    }
  }
  return { type: "results", docId, outcomes }
}

const readRefused = (r: ByteReader): Refused => {
  const code = r.string() as RefusalCode
  if (!REFUSAL_CODES.includes(code)) bad(`Unknown refusal code ${show(code)}.`)
  const message = r.string()
  const opt = optionalFields(r, 3)
  const m: { -readonly [K in keyof Refused]: Refused[K] } = { type: "refused", code, message }
  if (opt & 1) m.protocol = { min: r.varint(), max: r.varint() }
  if (opt & 2) m.machine = r.string()
  return m
}

type Reader<T> = (r: ByteReader) => T

interface Spec<T> {
  readonly flags: number
  readonly read: Reader<T>
  /** The first protocol version with this type (default 1): older versions do not know it. */
  readonly since?: number
}

const CLIENT_SPECS = new Map<number, Spec<ClientMessage>>([
  [HELLO, { flags: REQUIRED, read: readHello }],
  [SUBSCRIBE, { flags: REQUIRED, read: (r) => ({
    type: "subscribe", docId: subscribedDoc(r.string()), machine: r.string(), version: r.varint(), fingerprint: r.string(), fromSeq: r.varint(), ackedClientSeq: r.varint(),
  }) }],
  [SUBMIT, { flags: REQUIRED, read: readSubmit }],
  [SUBMIT2, { flags: REQUIRED, read: readSubmit2, since: 2 }],
  [FETCH_STATE, { flags: REQUIRED, read: (r) => ({ type: "fetch-state", docId: r.string() }) }],
  [UNSUBSCRIBE, { flags: REQUIRED, read: (r) => ({ type: "unsubscribe", docId: r.string() }) }],
  [SNAPSHOT_ACK, { flags: REQUIRED, read: (r) => ({ type: "snapshot-ack", docId: r.string(), snapshotId: r.varint(), received: r.varint() }) }],
  [PRESENCE_SET, { flags: OPTIONAL, read: (r) => ({ type: "presence-set", docId: r.string(), state: readValue(r) }) }],
])

const SERVER_SPECS = new Map<number, Spec<ServerMessage>>([
  [WELCOME, { flags: REQUIRED, read: (r) => ({ type: "welcome", protocol: r.varint(), clientId: r.string() }) }],
  [REFUSED, { flags: REQUIRED, read: readRefused }],
  [ENTRIES, { flags: REQUIRED, read: readEntries }],
  [RESULTS, { flags: REQUIRED, read: readResults }],
  [ENTRIES2, { flags: REQUIRED, read: readEntries2, since: 2 }],
  [RESULTS2, { flags: REQUIRED, read: readResults2, since: 2 }],
  [SYNCED, { flags: REQUIRED, read: (r) => ({ type: "synced", docId: r.string(), seq: r.varint() }) }],
  [CHECKPOINT, { flags: REQUIRED, read: (r) => ({ type: "checkpoint", docId: r.string(), seq: r.varint(), hash: r.string() }) }],
  [STATE, { flags: REQUIRED, read: (r) => ({ type: "state", docId: r.string(), seq: r.varint(), hash: r.string(), state: r.bytes() }) }],
  [ERROR, { flags: REQUIRED, read: (r) => {
    const code = r.string()
    const message = r.string()
    const opt = optionalFields(r, 3)
    const m: { -readonly [K in keyof ErrorMsg]: ErrorMsg[K] } = { type: "error", code, message }
    if (opt & 1) m.docId = r.string()
    if (opt & 2) m.seq = r.varint()
    return m
  } }],
  [SNAPSHOT_BEGIN, { flags: REQUIRED, read: (r) => ({
    type: "snapshot-begin", docId: r.string(), snapshotId: r.varint(), seq: r.varint(), hash: r.string(), size: r.varint(),
  }) }],
  [SNAPSHOT_CHUNK, { flags: REQUIRED, read: (r) => ({
    type: "snapshot-chunk", docId: r.string(), snapshotId: r.varint(), offset: r.varint(), bytes: r.bytes(),
  }) }],
  [SNAPSHOT_END, { flags: REQUIRED, read: (r) => ({ type: "snapshot-end", docId: r.string(), snapshotId: r.varint() }) }],
  [PRESENCE, { flags: OPTIONAL, read: (r) => ({ type: "presence", docId: r.string(), clientId: r.string(), state: readValue(r) }) }],
  [KEEPALIVE, { flags: OPTIONAL, read: () => ({ type: "keepalive" }) }],
])

/** Maps what the shared readers (core/bytes, core/canonical) throw to a decode error code. */
const toDecodeError = (e: unknown): DecodeError => {
  if (e instanceof Fail) return new DecodeError({ code: e.code, message: e.message })
  if (e instanceof CanonError) {
    const m = e.message
    const code: DecodeErrorCode =
      m.startsWith("Unexpected end") || m.includes("runs past the end") || m.includes("cannot fit in") ? "truncated"
      : m.startsWith("Varint") ? "bad-varint"
      : m.includes("UTF-8") ? "bad-utf8"
      : m.includes("nests deeper") ? "too-deep"
      : "bad-value"
    return new DecodeError({ code, message: m })
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new DecodeError({ code: "too-deep", message: "A value nests too deeply." })
  return new DecodeError({ code: "bad-value", message: `Malformed frame: ${e instanceof Error ? e.message : String(e)}` })
}

const failure = (code: DecodeErrorCode, message: string): { readonly ok: false; readonly error: DecodeError } =>
  ({ ok: false, error: new DecodeError({ code, message }) })

const decode = <T>(
  frame: Uint8Array,
  options: CodecOptions | undefined,
  specs: ReadonlyMap<number, Spec<T>>,
  others: ReadonlyMap<number, unknown>,
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
    if (frame.length > max) return failure("too-large", `A frame of ${frame.length} bytes is over the limit of ${max} bytes.`)
    if (frame.length === 0) return failure("empty", "An empty frame.")
    if (frame.length === 1) return failure("truncated", "A frame of one byte has no flags.")
    // A plain Uint8Array view (a Buffer's slice() would alias the frame instead of copying).
    const bytes = frame.constructor === Bytes ? frame : new Bytes(frame.buffer, frame.byteOffset, frame.byteLength)
    const type = bytes[0]!
    const flags = bytes[1]!
    const known = specs.get(type)
    // A type newer than the connection's version is unknown to it, as to an older peer.
    const spec = known !== undefined && (known.since ?? 1) <= version ? known : undefined
    if (spec === undefined) {
      if (others.has(type)) return failure("unknown-type", `Message type 0x${type.toString(16)} is not a ${side} message.`)
      if (flags & OPTIONAL) return { ok: "ignore", type }
      return failure("unknown-type", `Unknown required message type 0x${type.toString(16)}.`)
    }
    if (flags !== spec.flags) return failure("bad-value", `Flags 0x${flags.toString(16)} on message type 0x${type.toString(16)} (expected 0x${spec.flags.toString(16)}).`)
    const r = new ByteReader(bytes)
    r.pos = 2
    const message = spec.read(r)
    if (r.remaining > 0) return failure("trailing-bytes", `${r.remaining} bytes left after a message of type 0x${type.toString(16)}.`)
    return { ok: true, message }
  } catch (e) {
    return { ok: false, error: toDecodeError(e) }
  } finally {
    ErrorClass.stackTraceLimit = stackTraceLimit
  }
}

/** Decodes a frame a client sent (the hub's side). Never throws. */
export const decodeClientMessage = (frame: Uint8Array, options?: CodecOptions): Decoded<ClientMessage> =>
  decode(frame, options, CLIENT_SPECS, SERVER_SPECS, "client")

/** Decodes a frame the hub sent (a client's side). Never throws. */
export const decodeServerMessage = (frame: Uint8Array, options?: CodecOptions): Decoded<ServerMessage> =>
  decode(frame, options, SERVER_SPECS, CLIENT_SPECS, "server")
