/**
 * Protocol fuzzing: generators of valid messages (shared with test/codec.test.ts) and a
 * seeded fuzzer that feeds random and mutated frames to both decoders.
 *
 *     npx tsx test/fuzz.ts [--frames N] [--seed S]     (npm run fuzz -- --frames 1000000)
 *
 * Each frame goes to decodeClientMessage and decodeServerMessage, under protocol 1 and under
 * protocol 2 (with a session that knows some channels, names and its clientId, as a live
 * connection's does; seeds include compact frames). The run fails (exit 1)
 * if a decoder throws, returns an error that is not a DecodeError with a known code, or
 * accepts a frame whose message does not re-encode stably (encode(decode(encode(m))) must
 * give the same bytes) or whose decoded size is out of proportion with the frame.
 */
import fc from "fast-check"
import { pathToFileURL } from "node:url"
import {
  CodecSession, DecodeError, decodeClientMessage, defineReceived, decodeServerMessage, encodeClientMessage, encodeServerMessage,
  type DecodeErrorCode, type Decoded,
} from "../core/protocol/codec.js"
import type { ClientMessage, ServerMessage } from "../core/protocol/messages.js"
import type { Entry, Outcome } from "../core/entry.js"
import type { RejectionCode } from "../core/errors.js"
import { seededRandom } from "../core/random.js"

// ---- generators of valid messages ----

const put = (o: Record<string, unknown>, k: string, v: unknown): void => {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

/** Plain data as core/canonical.ts encodes it (objects may hold undefined, which it drops). */
export const plainValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", maxDepth: 4 },
    fc.constant(null), fc.constant(undefined), fc.boolean(), fc.integer(), fc.maxSafeInteger(), fc.double(),
    fc.string(), fc.string({ unit: "binary", maxLength: 8 }), fc.uint8Array({ maxLength: 12 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant("__proto__")), tie("value"), { maxKeys: 4 }),
  ),
})).value

/** What a canonical value decodes to: plain objects, without undefined properties. */
export const normalizeValue = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(normalizeValue)
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k]
    if (x !== undefined) put(out, k, normalizeValue(x))
  }
  return out
}

/** Unsigned integers the protocol carries: small ones mostly, up to 2^53 - 1. */
const uint = fc.oneof(fc.nat({ max: 300 }), fc.nat(), fc.maxSafeNat())
/** Delta-coded integers (clientSeqs, outcome seqs, times): below 2^52. */
const uint52 = fc.oneof(fc.nat({ max: 300 }), fc.nat(), fc.maxSafeNat().map((n) => n % 2 ** 52))
const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: "binary", maxLength: 12 }), fc.constantFrom("", "list", "k3j5h2g8f9d0s1a2"))
const commandName = fc.oneof(fc.constantFrom("add", "toggle", "rename", "remove"), text)
const rejectionCode = fc.constantFrom<RejectionCode>("rejected", "command-failed", "invalid-args", "unknown-command", "outcome-expired")
const versionRange = fc.record({ min: uint, max: uint })

/** An optional field: absent, present, or (normalized away by the codec) explicitly undefined. */
const withOptional = <T extends object, V>(base: fc.Arbitrary<T>, key: string, value: fc.Arbitrary<V>): fc.Arbitrary<T> =>
  fc.tuple(base, fc.constantFrom(0, 1, 1, 2), value).map(([b, mode, v]) =>
    mode === 0 ? b : ({ ...b, [key]: mode === 1 ? v : undefined }))

const hello = withOptional(
  fc.record({
    type: fc.constant("hello" as const),
    protocol: versionRange,
    clientId: text,
    machines: fc.array(fc.record({ name: text, version: uint, fingerprint: text }), { maxLength: 4 }),
  }),
  "credentials", text,
)

const submit = fc.record({
  type: fc.constant("submit" as const),
  docId: text,
  commands: fc.oneof(
    // contiguous clientSeqs, the usual case
    fc.tuple(uint52.map((n) => Math.min(n, 2 ** 52 - 100)), fc.array(fc.record({ name: commandName, args: plainValue }), { maxLength: 8 }))
      .map(([first, cs]) => cs.map((c, i) => ({ clientSeq: first + i, ...c }))),
    fc.array(fc.record({ clientSeq: uint52, name: commandName, args: plainValue }), { maxLength: 8 }),
  ),
  ackedClientSeq: uint,
})

export const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  hello,
  fc.record({ type: fc.constant("subscribe" as const), docId: text, machine: text, version: uint, fingerprint: text, fromSeq: uint, ackedClientSeq: uint }),
  submit,
  fc.record({ type: fc.constant("fetch-state" as const), docId: text }),
  fc.record({ type: fc.constant("unsubscribe" as const), docId: text }),
  fc.record({ type: fc.constant("snapshot-ack" as const), docId: text, snapshotId: uint, received: uint }),
  fc.record({ type: fc.constant("presence-set" as const), docId: text, state: plainValue }),
)

const time = fc.maxSafeNat().map((n) => n % 2 ** 52)

const entries = withOptional(
  fc.record({
    docId: text,
    first: uint.map((n) => Math.min(n, 2 ** 53 - 1000)),
    clients: fc.array(text, { minLength: 1, maxLength: 4 }),
    items: fc.array(fc.record({ client: fc.nat(7), clientSeq: uint52, name: commandName, args: plainValue, time, step: fc.nat({ max: 5000 }) }), { maxLength: 10 }),
    monotone: fc.boolean(),
    start: fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }),
  }).map(({ docId, first, clients, items, monotone, start }): { type: "entries"; docId: string; entries: Entry[] } => {
    let t = start
    return {
      type: "entries",
      docId,
      entries: items.map((it, i) => {
        t += it.step
        return { seq: first + i, time: monotone ? t : it.time, clientId: clients[it.client % clients.length]!, clientSeq: it.clientSeq, name: it.name, args: it.args }
      }),
    }
  }),
  "checkpoint", fc.record({ seq: uint, hash: text }),
)

const outcome: fc.Arbitrary<Outcome> = fc.oneof(
  fc.record({ clientSeq: uint52, seq: uint52 }),
  fc.record({ clientSeq: uint52, rejection: fc.record({ code: rejectionCode, message: text }) }),
)

const results = fc.record({
  type: fc.constant("results" as const),
  docId: text,
  outcomes: fc.oneof(
    fc.array(outcome, { maxLength: 8 }),
    fc.tuple(fc.nat({ max: 10000 }), fc.array(outcome, { maxLength: 8 })).map(([first, os]) => os.map((o, i) => ({ ...o, clientSeq: first + i }))),
  ),
})

const refused = withOptional(
  withOptional(
    fc.record({
      type: fc.constant("refused" as const),
      code: fc.constantFrom("protocol-unsupported", "machine-unknown", "schema-too-old", "schema-too-new", "schema-mismatch", "unauthorized" as const),
      message: text,
    }),
    "protocol", versionRange,
  ),
  "machine", text,
)

export const serverMessage: fc.Arbitrary<ServerMessage> = fc.oneof(
  fc.record({ type: fc.constant("welcome" as const), protocol: uint, clientId: text }),
  refused,
  entries.map((e) => ({ ...e, type: "entries" as const })),
  results,
  fc.record({ type: fc.constant("synced" as const), docId: text, seq: uint }),
  fc.record({ type: fc.constant("checkpoint" as const), docId: text, seq: uint, hash: text }),
  fc.record({ type: fc.constant("state" as const), docId: text, seq: uint, hash: text, state: fc.uint8Array({ maxLength: 64 }) }),
  withOptional(fc.record({ type: fc.constant("error" as const), code: text, message: text }), "docId", text),
  fc.record({ type: fc.constant("snapshot-begin" as const), docId: text, snapshotId: uint, seq: uint, hash: text, size: uint }),
  fc.record({ type: fc.constant("snapshot-chunk" as const), docId: text, snapshotId: uint, offset: uint, bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ type: fc.constant("snapshot-end" as const), docId: text, snapshotId: uint }),
  fc.record({ type: fc.constant("presence" as const), docId: text, clientId: text, state: plainValue }),
  fc.record({ type: fc.constant("keepalive" as const) }),
) as fc.Arbitrary<ServerMessage>

const OPTIONAL_FIELDS = ["credentials", "checkpoint", "protocol", "machine", "docId"]

/** A deep copy made of plain objects and arrays (fast-check may build null-prototype records). */
const plain = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(plain)
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) put(out, k, plain((v as Record<string, unknown>)[k]))
  return out
}

/** What a message decodes to: absent optional fields, plain objects, canonical values normalized. */
export const normalizeMessage = <M extends ClientMessage | ServerMessage>(m: M): M => {
  const out = plain(m) as Record<string, unknown>
  for (const k of OPTIONAL_FIELDS) if (k in out && out[k] === undefined) delete out[k]
  switch (m.type) {
    case "submit": out.commands = m.commands.map((c) => ({ clientSeq: c.clientSeq, name: c.name, args: normalizeValue(c.args) })); break
    case "entries": out.entries = m.entries.map((e) => ({ ...(plain(e) as Entry), args: normalizeValue(e.args) })); break
    case "presence": case "presence-set": out.state = normalizeValue(m.state); break
  }
  return out as M
}

// ---- the fuzzer ----

export const DECODE_ERROR_CODES: ReadonlyArray<DecodeErrorCode> = [
  "empty", "truncated", "too-large", "bad-varint", "unknown-type", "bad-value", "trailing-bytes", "bad-utf8", "too-deep", "unsupported-version",
]
const KNOWN_CODES = new Set<string>(DECODE_ERROR_CODES)

export interface FuzzOptions {
  readonly frames: number
  readonly seed?: number
  /** Called every `progressEvery` frames. */
  readonly onProgress?: (done: number) => void
  readonly progressEvery?: number
}

export interface FuzzReport {
  readonly frames: number
  readonly decodes: number
  readonly accepted: number
  /** Accepted protocol 2 compact frames (submit2, entries2, results2). */
  readonly acceptedCompact: number
  readonly ignored: number
  readonly errors: Record<string, number>
  /** How many decodes went wrong (threw, odd error, unstable message...). */
  readonly escapeCount: number
  /** The first 20 of them: the frame (up to 256 bytes, hex) and what went wrong. */
  readonly escapes: ReadonlyArray<{ readonly frame: string; readonly problem: string }>
  /** Largest (decoded slots) / (frame bytes) over accepted frames: see `footprint`. */
  readonly maxFootprintRatio: number
  readonly largestFrame: number
  /** Largest growth of process.memoryUsage() over the run's start, sampled. */
  readonly arrayBuffersGrowth: number
  readonly heapGrowth: number
  readonly ms: number
}

/**
 * The size of a decoded message in slots: one per array element and object property, one
 * per byte of a Uint8Array, one per character of each distinct string (tables share the
 * strings they repeat). A decoder that allocates in proportion to its frame keeps this
 * within a small multiple of the frame's length.
 */
export const footprint = (v: unknown, strings = new Set<string>()): number => {
  if (typeof v === "string") {
    if (strings.has(v)) return 0
    strings.add(v)
    return v.length
  }
  if (v === null || typeof v !== "object") return 0
  if (v instanceof Bytes) return v.length
  if (isArray(v)) {
    let n = v.length
    for (const x of v) n += footprint(x, strings)
    return n
  }
  let n = 0
  for (const k of keys(v)) n += 1 + footprint(k, strings) + footprint((v as Record<string, unknown>)[k], strings)
  return n
}

/** Accepted frames must decode to at most this many slots per byte, plus the slack (field names). */
export const FOOTPRINT_PER_BYTE = 2
export const FOOTPRINT_SLACK = 128

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")

/** Valid frames to mutate: generated messages of every type, and a large entries batch. */
const seedFrames = (seed: number): Uint8Array[] => {
  const out: Uint8Array[] = []
  for (const m of fc.sample(clientMessage, { seed, numRuns: 300 })) out.push(encodeClientMessage(m))
  for (const m of fc.sample(serverMessage, { seed: seed + 1, numRuns: 500 })) out.push(encodeServerMessage(m))
  const big: Entry[] = []
  for (let i = 0; i < 200; i++) {
    big.push({ seq: 5000 + i, time: 1_700_000_000_000 + i * 13, clientId: `client${i % 3}`, clientSeq: 100 + i, name: i % 2 ? "add" : "toggle", args: { id: `t${i}`, title: `item ${i}`, done: i % 3 === 0 } })
  }
  out.push(encodeServerMessage({ type: "entries", docId: "list", entries: big, checkpoint: { seq: 5199, hash: "0123456789abcdef" } }))
  return out
}

// ---- protocol 2: compact frames need a session ----

const V2_DOCS = ["list", "k3j5h2g8f9d0s1a2", "doc/ünïcödé"]
const V2_NAMES = ["add", "toggle", "move"]
const V2_CLIENT = "client0"

/** A session as a live connection's: its clientId said, some channels and names known. */
const primed = (): CodecSession => {
  const s = new CodecSession()
  s.clientId = V2_CLIENT
  for (const d of V2_DOCS) s.subscribed(d)
  V2_NAMES.forEach((n, i) => {
    defineReceived(s, n)
    s.namesSent.set(n, i + 1)
  })
  return s
}

const v2Doc = fc.constantFrom(...V2_DOCS)
const v2Name = fc.oneof(fc.constantFrom(...V2_NAMES), commandName)
const argBytes = fc.uint8Array({ maxLength: 24 })

const compactMessage: fc.Arbitrary<ClientMessage | ServerMessage> = fc.oneof(
  fc.record({
    type: fc.constant("submit" as const), docId: v2Doc, ackedClientSeq: uint, compact: fc.constant(true as const),
    commands: fc.array(fc.record({ name: v2Name, args: argBytes }), { maxLength: 6 }).chain((cs) =>
      uint52.map((first) => cs.map((c, i) => ({ clientSeq: first + i, ...c })))),
  }),
  fc.record({
    docId: v2Doc, first: uint52, checkpoint: fc.option(fc.record({ seq: uint, hash: text }), { nil: undefined }),
    entries: fc.array(fc.record({ own: fc.boolean(), clientId: fc.constantFrom("a", "b", V2_CLIENT), clientSeq: uint52, name: v2Name, time: fc.nat({ max: 2 ** 40 }), args: argBytes }), { maxLength: 8 }),
  }).map(({ docId, first, checkpoint, entries }): ServerMessage => {
    const es: Entry[] = entries.map((e, i) => e.own
      ? { seq: first + i, time: e.time, clientId: V2_CLIENT, clientSeq: e.clientSeq, name: "", args: null, elided: true }
      : { seq: first + i, time: e.time, clientId: e.clientId, clientSeq: e.clientSeq, name: e.name, args: e.args })
    // clientSeqs of one client in one frame go up (the delta coding's range)
    const last = new Map<string, number>()
    const fixed = es.map((e) => {
      if (e.elided === true) return e
      const p = last.get(e.clientId)
      const clientSeq = p === undefined ? e.clientSeq % 2 ** 40 : p + 1 + (e.clientSeq % 5)
      last.set(e.clientId, clientSeq)
      return { ...e, clientSeq }
    })
    return { type: "entries", docId, entries: fixed, compact: true, ...(checkpoint !== undefined ? { checkpoint } : {}) }
  }),
  fc.record({ type: fc.constant("results" as const), docId: v2Doc, compact: fc.constant(true as const), outcomes: fc.constant<Outcome[]>([]) }).chain((m) =>
    fc.array(fc.oneof(
      fc.record({ seq: fc.nat({ max: 1000 }) }),
      fc.record({ rejection: fc.record({ code: rejectionCode, message: text }) }),
      fc.record({ seqAtMost: uint }),
    ), { maxLength: 6 }).map((os) => ({ ...m, outcomes: os.map((o, i) => ({ clientSeq: 10 + i, ...o }) as Outcome) }))),
)

/** Protocol 2 frames to mutate: compact ones, encoded with a primed session. */
const seedFrames2 = (seed: number): Uint8Array[] => {
  const out: Uint8Array[] = []
  for (const m of fc.sample(compactMessage, { seed: seed + 2, numRuns: 300 })) {
    const client = m.type === "submit"
    try {
      out.push(client ? encodeClientMessage(m as ClientMessage, { version: 2, session: primed() }) : encodeServerMessage(m as ServerMessage, { version: 2, session: primed() }))
    } catch {
      // a generated value the protocol cannot carry (e.g. deltas out of range): not a seed
    }
  }
  return out
}

const KNOWN_TYPES = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b]
const KNOWN_TYPES_2 = [...KNOWN_TYPES, 0x08, 0x4d, 0x4e]

type Rng = () => number

// Globals read once: inside jest's vm context every global lookup on a hot path is slow.
const { floor, min, max } = Math
const Bytes = Uint8Array
const { isArray } = Array
const { keys } = Object

const int = (rng: Rng, n: number): number => floor(rng() * n)

const randomBytes = (rng: Rng, n: number): Uint8Array => {
  const b = new Bytes(n)
  for (let i = 0; i < n; i++) b[i] = int(rng, 256)
  return b
}

const varintBytes = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = floor(n / 0x80)
  }
  out.push(n)
  return out
}

const splice = (b: Uint8Array, at: number, remove: number, insert: ArrayLike<number>): Uint8Array => {
  at = min(at, b.length)
  remove = min(remove, b.length - at)
  const out = new Bytes(b.length - remove + insert.length)
  out.set(b.subarray(0, at))
  out.set(insert, at)
  out.set(b.subarray(at + remove), at + insert.length)
  return out
}

const SPECIAL = [0x00, 0x01, 0x7f, 0x80, 0xff]
const LIES = [0x7f, 0x80, 0xff, 1 << 14, 1 << 20, 2 ** 31, 2 ** 40, 2 ** 52, Number.MAX_SAFE_INTEGER]

/** One fuzz frame: random, or a valid frame mutated in one or more ways. */
const makeFrame = (rng: Rng, seeds: ReadonlyArray<Uint8Array>): Uint8Array => {
  const pick = (): Uint8Array => seeds[int(rng, seeds.length)]!
  // Deep nesting is costly to decode (hundreds of levels): one frame in a hundred.
  const kind = int(rng, 100) === 0 ? 12 : int(rng, 12)
  switch (kind) {
    case 12: { // a presence state nested around the depth limit (512): arrays and objects with key ""
      const depth = 480 + int(rng, 80)
      const out = int(rng, 2) === 1 ? [0x4b, 0x01, 1, 0x64, 1, 0x63] : [0x07, 0x01, 1, 0x64]
      for (let i = 0; i < depth; i++) out.push(...(int(rng, 2) ? [8, 1] : [9, 1, 0]))
      out.push(0)
      return Bytes.from(out)
    }
    case 0: return randomBytes(rng, int(rng, 4) === 0 ? int(rng, 2048) : int(rng, 48))
    case 1: { // a known type and flags, random body
      const b = randomBytes(rng, 2 + int(rng, 64))
      b[0] = KNOWN_TYPES_2[int(rng, KNOWN_TYPES_2.length)]!
      b[1] = int(rng, 8) === 0 ? 1 : 0
      return b
    }
    case 2: { // unknown types, optional or not
      const b = pick().slice()
      let t = int(rng, 256)
      while (KNOWN_TYPES_2.includes(t)) t = int(rng, 256)
      b[0] = t
      if (b.length > 1) b[1] = int(rng, 256)
      return b
    }
    case 3: { // truncation
      const b = pick()
      return b.slice(0, int(rng, b.length + 1))
    }
    case 4: { // varint overflow: 10+ bytes of 0xff somewhere in the body
      const b = pick()
      const at = min(b.length, 2 + int(rng, max(1, b.length - 1)))
      return splice(b, at, int(rng, 3), new Array(10 + int(rng, 6)).fill(0xff))
    }
    case 5: { // a lying length or count: a large varint in place of a byte
      const b = pick()
      const at = min(b.length, 2 + int(rng, max(1, b.length - 1)))
      return splice(b, at, min(1, b.length - at), varintBytes(LIES[int(rng, LIES.length)]!))
    }
    case 6: { // a body for another type (the other direction included)
      const b = pick().slice()
      if (b.length > 0) b[0] = KNOWN_TYPES_2[int(rng, KNOWN_TYPES_2.length)]!
      return b
    }
    case 7: { // trailing bytes
      const b = pick()
      return splice(b, b.length, 0, randomBytes(rng, 1 + int(rng, 8)))
    }
    case 8: { // two frames spliced
      const a = pick()
      const b = pick()
      const cut = int(rng, a.length + 1)
      return splice(a, cut, a.length - cut, b.subarray(int(rng, b.length + 1)))
    }
    default: { // bit flips and special bytes, one to eight of them
      const b = pick().slice()
      if (b.length === 0) return b
      const n = 1 + int(rng, 8)
      for (let i = 0; i < n; i++) {
        const at = int(rng, b.length)
        if (kind === 11) b[at] = SPECIAL[int(rng, SPECIAL.length)]!
        else b[at] = b[at]! ^ (1 << int(rng, 8))
      }
      return b
    }
  }
}

type Side = "client" | "server"

/** Codec options of one end under a version: protocol 2 gets a fresh primed session each time. */
const ends = (version: number, maxFrameBytes?: number) =>
  ({ version, ...(version >= 2 ? { session: primed() } : {}), ...(maxFrameBytes !== undefined ? { maxFrameBytes } : {}) })

const reencode = (side: Side, version: number, m: ClientMessage | ServerMessage): Uint8Array =>
  side === "client" ? encodeClientMessage(m as ClientMessage, ends(version, 1 << 30)) : encodeServerMessage(m as ServerMessage, ends(version, 1 << 30))

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Feeds `frames` frames to both decoders; never throws on a decoder bug, reports it. */
export const runFuzz = (options: FuzzOptions): FuzzReport => {
  const seed = options.seed ?? 1
  const rng = seededRandom(seed)
  const seeds = [...seedFrames(seed), ...seedFrames2(seed)]
  const started = performance.now()
  const errors: Record<string, number> = {}
  const escapes: Array<{ frame: string; problem: string }> = []
  let escapeCount = 0
  let accepted = 0
  let acceptedCompact = 0
  let ignored = 0
  let decodes = 0
  let maxRatio = 0
  let largestFrame = 0
  const base = process.memoryUsage()
  let abGrowth = 0
  let heapGrowth = 0
  const every = options.progressEvery ?? 100_000

  const check = (side: Side, version: number, frame: Uint8Array, result: Decoded<ClientMessage | ServerMessage> | undefined, thrown: unknown): void => {
    decodes++
    const escape = (problem: string) => {
      escapeCount++
      if (escapes.length < 20) escapes.push({ frame: hex(frame.subarray(0, 256)), problem: `${side} v${version}: ${problem}` })
    }
    if (thrown !== undefined || result === undefined) return escape(`threw ${String(thrown)}`)
    if (result.ok === false) {
      const e = result.error
      if (!(e instanceof DecodeError) || e._tag !== "DecodeError" || !KNOWN_CODES.has(e.code)) return escape(`odd error ${String(e)}`)
      errors[e.code] = (errors[e.code] ?? 0) + 1
      return
    }
    if (result.ok === "ignore") {
      ignored++
      if ((frame[1]! & 1) === 0 || (version >= 2 ? KNOWN_TYPES_2 : KNOWN_TYPES).includes(frame[0]!) || result.type !== frame[0]) escape(`ignored a frame it must not ignore`)
      return
    }
    accepted++
    if (version >= 2 && (frame[0] === 0x08 || frame[0] === 0x4d || frame[0] === 0x4e)) acceptedCompact++
    const slots = footprint(result.message)
    if ((slots - FOOTPRINT_SLACK) / frame.length > maxRatio) maxRatio = (slots - FOOTPRINT_SLACK) / frame.length
    if (slots > FOOTPRINT_PER_BYTE * frame.length + FOOTPRINT_SLACK) escape(`decoded ${slots} slots from ${frame.length} bytes`)
    try {
      const once = reencode(side, version, result.message)
      const again = side === "client" ? decodeClientMessage(once, ends(version, 1 << 30)) : decodeServerMessage(once, ends(version, 1 << 30))
      if (again.ok !== true) return escape(`re-encoded frame does not decode: ${again.ok === false ? again.error.message : "ignored"}`)
      if (!sameBytes(reencode(side, version, again.message), once)) escape("re-encoding is not stable")
    } catch (e) {
      escape(`accepted a message that does not re-encode: ${String(e)}`)
    }
  }

  for (let i = 0; i < options.frames; i++) {
    const frame = makeFrame(rng, seeds)
    if (frame.length > largestFrame) largestFrame = frame.length
    for (const version of [1, 2]) {
      for (const side of ["client", "server"] as const) {
        let result: Decoded<ClientMessage | ServerMessage> | undefined
        let thrown: unknown
        // Now and then a limit just under the frame: it must be refused unread.
        const limit = i % 64 === 0 && frame.length > 0 ? frame.length - 1 : undefined
        try {
          const options = ends(version, limit)
          result = side === "client" ? decodeClientMessage(frame, options) : decodeServerMessage(frame, options)
        } catch (e) {
          thrown = e ?? "undefined"
        }
        if (limit !== undefined && thrown === undefined && (result?.ok !== false || result.error.code !== "too-large")) {
          thrown = "a frame over maxFrameBytes was not refused as too-large"
        }
        check(side, version, frame, result, thrown)
      }
    }
    if (i % 2000 === 0) {
      const mem = process.memoryUsage()
      abGrowth = max(abGrowth, mem.arrayBuffers - base.arrayBuffers)
      heapGrowth = max(heapGrowth, mem.heapUsed - base.heapUsed)
    }
    if (options.onProgress && (i + 1) % every === 0) options.onProgress(i + 1)
  }

  return {
    frames: options.frames, decodes, accepted, acceptedCompact, ignored, errors, escapeCount, escapes, maxFootprintRatio: maxRatio, largestFrame,
    arrayBuffersGrowth: abGrowth, heapGrowth, ms: performance.now() - started,
  }
}

// ---- CLI ----

const usage = "usage: npx tsx test/fuzz.ts [--frames N] [--seed S]"

const main = (argv: ReadonlyArray<string>): number => {
  let frames = 100_000
  let seed = Date.now() % 1_000_000
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined]
    const value = () => Number(inline ?? argv[++i])
    if (flag === "--frames") frames = value()
    else if (flag === "--seed") seed = value()
    else if (flag === "--help" || flag === "-h") {
      console.log(usage)
      return 0
    } else {
      console.error(`Unknown argument "${a}".\n${usage}`)
      return 2
    }
  }
  if (!Number.isSafeInteger(frames) || frames < 1 || !Number.isSafeInteger(seed)) {
    console.error(`--frames and --seed take integers.\n${usage}`)
    return 2
  }
  console.log(`fuzz: ${frames} frames, seed ${seed}`)
  const r = runFuzz({ frames, seed, onProgress: (n) => console.log(`  ${n} frames`) })
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`
  console.log(`fuzz: ${r.decodes} decodes in ${(r.ms / 1000).toFixed(1)} s: ${r.accepted} accepted (${r.acceptedCompact} compact), ${r.ignored} ignored, errors ${JSON.stringify(r.errors)}`)
  console.log(`fuzz: largest frame ${r.largestFrame} bytes, max decoded slots per frame byte ${r.maxFootprintRatio.toFixed(2)}, arrayBuffers growth ${mb(r.arrayBuffersGrowth)}, heap growth ${mb(r.heapGrowth)}`)
  if (r.escapeCount > 0) {
    console.error(`fuzz: ${r.escapeCount} ESCAPES (seed ${seed}), the first ${r.escapes.length}:`)
    for (const e of r.escapes) console.error(`  ${e.problem}\n    frame ${e.frame}`)
    return 1
  }
  console.log("fuzz: ok")
  return 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2))
