/**
 * The hub's half of the wire codec (the specification is the header of
 * core/protocol/codec.ts): the frames the hub sends, and the reading of the frames a client
 * sends. codec-client.ts is the client's half.
 */
import { type ByteReader, type ByteWriter, utf8Length } from "../bytes.js"
import { isBytes, readValue, writeValue } from "../canonical.js"
import type { CommandRequest, Entry, Outcome } from "../entry.js"
import type { Rejection } from "../errors.js"
import {
  Type, MAX_UINT, REFUSAL_CODES, REJECTION_CODES, SEQ_AT_MOST_KIND, SERVER_TYPES, TIME_LIMIT, Table, bad, boundedLength, channel, checkUint, compactArgs, compactFor, count, decodeFrame, delta, encodeFrame, header, invalid, isInteger, list, name, newNameTable, next,
  optionalFields, readChannel, readName, session, show, str, uint,
  type CodecOptions, type CodecSession, type Decoded, type Reader,
} from "./codec-shared.js"
import { MAX_COMMAND_NAME_BYTES, MAX_DOC_ID_BYTES } from "../limits.js"
import type { ClientMessage, Entries, Hello, MachineInfo, Refused, Results, ServerMessage, Submit } from "./messages.js"

// ---- encoding ----

const clientTable = new Map<string, number>()
const lastClientSeq: number[] = []

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
    newNameTable()
    let time = 0
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!
      if (e.seq !== first + i) invalid(`Entries must have contiguous seqs: ${show(e.seq)} follows ${first + i - 1}.`)
      const cs = e.clientSeq
      checkUint(cs, "A clientSeq")
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
    checkUint(cs, "A clientSeq")
    if (i === 0) w.varint(cs)
    else delta(w, cs - prevClientSeq - 1, "A clientSeq")
    prevClientSeq = cs
    if ("seq" in o) {
      const seq = o.seq
      checkUint(seq, "An outcome's seq")
      w.byte(0)
      delta(w, seq - prevSeq, "An outcome's seq")
      prevSeq = seq
    } else if ("seqAtMost" in o) {
      w.byte(SEQ_AT_MOST_KIND)
      uint(w, o.seqAtMost, "seqAtMost")
    } else {
      const r: Rejection | undefined = o.rejection
      const k = (REJECTION_CODES as ReadonlyArray<string | undefined>).indexOf(r?.code)
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

const writeServer = (w: ByteWriter, m: ServerMessage): void => {
  switch (m.type) {
    case "welcome":
      header(w, Type.WELCOME)
      uint(w, m.protocol, "protocol")
      str(w, m.clientId, "clientId")
      return
    case "refused":
      header(w, Type.REFUSED)
      writeRefused(w, m)
      return
    case "entries":
      header(w, m.compact === true ? Type.ENTRIES2 : Type.ENTRIES)
      writeEntries(w, m)
      return
    case "results":
      header(w, m.compact === true ? Type.RESULTS2 : Type.RESULTS)
      writeResults(w, m)
      return
    case "synced":
      header(w, Type.SYNCED)
      str(w, m.docId, "docId")
      uint(w, m.seq, "seq")
      return
    case "checkpoint":
      header(w, Type.CHECKPOINT)
      str(w, m.docId, "docId")
      uint(w, m.seq, "seq")
      str(w, m.hash, "hash")
      return
    case "state":
      header(w, Type.STATE)
      str(w, m.docId, "docId")
      uint(w, m.seq, "seq")
      str(w, m.hash, "hash")
      if (!isBytes(m.state)) invalid("state must be a Uint8Array.")
      w.bytes(m.state)
      return
    case "error":
      header(w, Type.ERROR)
      str(w, m.code, "code")
      str(w, m.message, "message")
      w.byte((m.docId !== undefined ? 1 : 0) | (m.seq !== undefined ? 2 : 0))
      if (m.docId !== undefined) str(w, m.docId, "docId")
      if (m.seq !== undefined) uint(w, m.seq, "seq")
      return
    case "snapshot-begin":
      header(w, Type.SNAPSHOT_BEGIN)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      uint(w, m.seq, "seq")
      str(w, m.hash, "hash")
      uint(w, m.size, "size")
      return
    case "snapshot-chunk":
      header(w, Type.SNAPSHOT_CHUNK)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      uint(w, m.offset, "offset")
      if (!isBytes(m.bytes)) invalid("bytes must be a Uint8Array.")
      w.bytes(m.bytes)
      return
    case "snapshot-end":
      header(w, Type.SNAPSHOT_END)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      return
    case "presence":
      header(w, Type.PRESENCE)
      str(w, m.docId, "docId")
      str(w, m.clientId, "clientId")
      writeValue(w, m.state)
      return
    case "keepalive":
      header(w, Type.KEEPALIVE)
      return
    default:
      invalid(`Not a server message type: ${show((m as { type?: unknown } | null)?.type)}.`)
  }
}

/** The frame of a server message. Throws a CanonError if the protocol cannot carry it. */
export const encodeServerMessage = (m: ServerMessage, options?: CodecOptions): Uint8Array => encodeFrame(m, options, writeServer)

// ---- decoding ----

/**
 * A subscribe's docId: the session counts it (it may get the next channel). One over the
 * protocol's limit is refused before it is decoded, with or without a session.
 */
const subscribedDoc = (r: ByteReader): string => {
  const bytes = boundedLength(r, MAX_DOC_ID_BYTES, "A subscribe's docId")
  const docId = r.string()
  const problem = session?.subscribed(docId, bytes)
  if (problem !== undefined) bad(problem)
  return docId
}

const readHello = (r: ByteReader): Hello => {
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
  if (session !== undefined) session.clientId = clientId
  return hello
}

/**
 * A name the client defines on `session` (decoding), of `bytes` UTF-8 bytes: why it cannot
 * be (defined twice, or past a limit), or undefined, and then it is `session.namesReceived`'s
 * next. Here, not a CodecSession method: only the hub decodes names.
 */
export const defineReceived = (session: CodecSession, name: string, bytes = utf8Length(name)): string | undefined => {
  const received = (session.received ??= new Set())
  if (received.has(name)) return `Command name ${show(name)} is defined twice on one connection.`
  const problem = session.nameProblem(name, session.namesReceived?.length ?? 0, bytes)
  if (problem !== undefined) return problem
  received.add(name)
  ;(session.namesReceived ??= []).push(name)
  return undefined
}

/** Protocol 2: a command name defined once per connection (bounded: the session keeps it). */
const readSessionName = (r: ByteReader): string => {
  const names = session!.namesReceived ?? []
  const k = r.varint()
  if (k !== 0) {
    if (k > names.length) bad(`Command name ${k} was never defined on this connection.`)
    return names[k - 1]!
  }
  const bytes = boundedLength(r, MAX_COMMAND_NAME_BYTES, "A command name")
  const s = r.string()
  const problem = defineReceived(session!, s, bytes)
  if (problem !== undefined) bad(problem)
  return s
}

/** A submit's commands: protocol 2's compact form or the plain one, with (submit3) the number each was made under. */
const readCommands = (r: ByteReader, compact: boolean, moved: boolean): CommandRequest[] => {
  const n = count(r, 3, "commands")
  const commands: CommandRequest[] = new Array(n)
  const names = new Table("Command name")
  let clientSeq = 0
  for (let i = 0; i < n; i++) {
    clientSeq = i === 0 ? r.varint() : next(r, clientSeq, "A clientSeq")
    const madeAs = moved ? r.varint() : 0
    const name = compact ? readSessionName(r) : readName(r, names)
    commands[i] = { clientSeq, name, args: compact ? r.bytes() : readValue(r), ...(madeAs !== 0 && { madeAs }) }
  }
  return commands
}

const readSubmit = (r: ByteReader, compact: boolean, moved: boolean): Submit => {
  const docId = compact ? readChannel(r) : r.string()
  const ackedClientSeq = r.varint()
  return { type: "submit", docId, commands: readCommands(r, compact, moved), ackedClientSeq, ...(compact && { compact: true as const }) }
}

const readSubmit3 = (r: ByteReader): Submit => {
  const form = r.byte()
  if (form > 1) bad(`Submit form ${form} unknown.`)
  return readSubmit(r, form === 1, true)
}

const CLIENT_READERS = new Map<number, Reader<ClientMessage>>([
  [Type.HELLO, readHello],
  [Type.SUBSCRIBE, (r) => ({
    type: "subscribe", docId: subscribedDoc(r), machine: r.string(), version: r.varint(), fingerprint: r.string(), fromSeq: r.varint(), ackedClientSeq: r.varint(),
  })],
  [Type.SUBMIT, (r) => readSubmit(r, false, false)],
  [Type.SUBMIT2, (r) => readSubmit(r, true, false)],
  [Type.SUBMIT3, readSubmit3],
  [Type.FETCH_STATE, (r) => ({ type: "fetch-state", docId: r.string() })],
  [Type.UNSUBSCRIBE, (r) => ({ type: "unsubscribe", docId: r.string() })],
  [Type.SNAPSHOT_ACK, (r) => ({ type: "snapshot-ack", docId: r.string(), snapshotId: r.varint(), received: r.varint() })],
  [Type.PRESENCE_SET, (r) => ({ type: "presence-set", docId: r.string(), state: readValue(r) })],
])

/** Decodes a frame a client sent (the hub's side). Never throws. */
export const decodeClientMessage = (frame: Uint8Array, options?: CodecOptions): Decoded<ClientMessage> =>
  decodeFrame(frame, options, CLIENT_READERS, SERVER_TYPES, "client")
