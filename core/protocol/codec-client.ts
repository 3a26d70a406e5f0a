/**
 * The client's half of the wire codec (the specification is the header of
 * core/protocol/codec.ts): the frames a client sends, and the reading of the frames the hub
 * sends. A browser bundle holds this half only; codec-server.ts is the hub's.
 */
import { utf8Length, type ByteReader, type ByteWriter } from "../bytes.js"
import { readValue, writeValue } from "../canonical.js"
import type { CommandRequest, Entry, Outcome } from "../entry.js"
import {
  CLIENT_TYPES, Type, MAX_UINT, REFUSAL_CODES, REJECTION_CODES, SEQ_AT_MOST_KIND, TIME_LIMIT, Table, bad, channel, checkUint, compactArgs, compactFor, count, decodeFrame, delta, encodeFrame, invalid, list, name, newNameTable, next, optionalFields,
  readChannel, readName, session, show, str, uint, unzigzag, header, checkString,
  type CodecOptions, type Decoded, type Reader,
} from "./codec-shared.js"
import { ENTRY_ARGS_READ_DEPTH, docIdBytesProblem } from "../limits.js"
import type { ClientMessage, Entries, ErrorMsg, MachineInfo, RefusalCode, Refused, Results, ServerMessage } from "./messages.js"

// ---- encoding ----

/** Protocol 2: a command name defined once per connection (bounded as the hub's decoder bounds it). */
const sessionName = (w: ByteWriter, s: string): void => {
  checkString(s, "A command name")
  const known = session!.namesSent.size
  const k = session!.defineSent(s)
  if (typeof k === "string") return invalid(k)
  if (k <= known) return w.varint(k)
  w.byte(0)
  w.string(s)
}

const writeClient = (w: ByteWriter, m: ClientMessage): void => {
  switch (m.type) {
    case "hello": {
      header(w, Type.HELLO)
      uint(w, m.protocol.min, "protocol.min")
      uint(w, m.protocol.max, "protocol.max")
      str(w, m.clientId, "clientId")
      const ms = list(w, m.machines, "machines")
      for (let i = 0; i < ms.length; i++) {
        const x: MachineInfo = ms[i]!
        str(w, x.name, "A machine name")
        uint(w, x.version, "A machine version")
        str(w, x.fingerprint, "A machine fingerprint")
      }
      w.byte((m.credentials !== undefined ? 1 : 0) | (m.secret !== undefined ? 2 : 0))
      if (m.credentials !== undefined) str(w, m.credentials, "credentials")
      if (m.secret !== undefined) str(w, m.secret, "secret")
      if (session !== undefined) session.clientId = m.clientId
      return
    }
    case "subscribe": {
      header(w, Type.SUBSCRIBE)
      str(w, m.docId, "docId")
      // Refused as the hub's decoder refuses it (a docId over the limit, a session full).
      const bytes = utf8Length(m.docId)
      const problem = docIdBytesProblem(bytes) ?? session?.subscribed(m.docId, bytes)
      if (problem !== undefined) invalid(problem)
      str(w, m.machine, "machine")
      uint(w, m.version, "version")
      str(w, m.fingerprint, "fingerprint")
      uint(w, m.fromSeq, "fromSeq")
      uint(w, m.ackedClientSeq, "ackedClientSeq")
      return
    }
    case "submit": {
      // Protocol 3: a submit holding a renumbered command says the number each was made under.
      const moved = m.commands.some((c) => c.madeAs !== undefined)
      header(w, moved ? Type.SUBMIT3 : m.compact === true ? Type.SUBMIT2 : Type.SUBMIT)
      const compact = compactFor(m)
      if (moved) w.byte(+compact)
      if (compact) channel(w, m.docId)
      else str(w, m.docId, "docId")
      uint(w, m.ackedClientSeq, "ackedClientSeq")
      const cs: ReadonlyArray<CommandRequest> = list(w, m.commands, "commands")
      newNameTable()
      let prev = 0
      for (let i = 0; i < cs.length; i++) {
        const c = cs[i]!
        const seq = c.clientSeq
        checkUint(seq, "A clientSeq")
        if (i === 0) w.varint(seq)
        else delta(w, seq - prev - 1, "A clientSeq")
        prev = seq
        if (moved) uint(w, c.madeAs ?? 0, "madeAs")
        if (compact) {
          sessionName(w, c.name)
          compactArgs(w, c.args)
        } else {
          name(w, c.name)
          writeValue(w, c.args)
        }
      }
      return
    }
    case "fetch-state":
      header(w, Type.FETCH_STATE)
      str(w, m.docId, "docId")
      return
    case "unsubscribe":
      header(w, Type.UNSUBSCRIBE)
      str(w, m.docId, "docId")
      return
    case "snapshot-ack":
      header(w, Type.SNAPSHOT_ACK)
      str(w, m.docId, "docId")
      uint(w, m.snapshotId, "snapshotId")
      uint(w, m.received, "received")
      return
    case "presence-set":
      header(w, Type.PRESENCE_SET)
      str(w, m.docId, "docId")
      writeValue(w, m.state)
      return
    default:
      invalid(`Not a client message: ${show((m as { type?: unknown } | null)?.type)}.`)
  }
}

/** The frame of a client message. Throws a CanonError if the protocol cannot carry it. */
export const encodeClientMessage = (m: ClientMessage, options?: CodecOptions): Uint8Array => encodeFrame(m, options, writeClient)

// ---- decoding ----


const readEntriesBody = (r: ByteReader, docId: string, compact: boolean): Entries => {
  // An elided entry takes 3 bytes at least; a full one 5.
  const n = count(r, compact ? 3 : 5, "entries")
  const entries: Entry[] = new Array(n)
  if (n > 0) {
    const first = r.varint()
    if (n - 1 > MAX_UINT - first) bad("Seqs past 2^53.")
    const clients = new Table("ClientId")
    const last: number[] = []
    const names = new Table("Command name")
    let time = 0
    for (let i = 0; i < n; i++) {
      let c = r.varint()
      let clientId: string
      let clientSeq: number
      let name = ""
      // Protocol 2's client 0 is the receiver's own command: it holds the name and arguments.
      const elided = compact && c-- === 0
      if (elided) {
        clientId = session!.clientId!
        if (clientId === undefined) bad("Elided entry before hello.")
        clientSeq = r.varint()
      } else {
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
        name = readName(r, names)
      }
      // An entry's time: the previous one's plus a zigzag delta, within the range an entry's time may take.
      time += unzigzag(r.varint())
      if (!(time >= 0 && time < TIME_LIMIT)) bad(`Time ${time} out of range.`)
      entries[i] = elided
        ? { seq: first + i, time, clientId, clientSeq, name, args: null, elided }
        // No deeper than a hub takes: the replica stores an entry inside a record (limits.ts).
        : { seq: first + i, time, clientId, clientSeq, name, args: compact ? r.bytes() : readValue(r, ENTRY_ARGS_READ_DEPTH) }
    }
  }
  const opt = optionalFields(r, 1)
  const m: { -readonly [K in keyof Entries]: Entries[K] } = { type: "entries", docId, entries }
  if (opt & 1) m.checkpoint = { seq: r.varint(), hash: r.string() }
  if (compact) m.compact = true
  return m
}


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
      if (code === undefined) bad(`Outcome kind ${kind}.`)
      outcomes[i] = { clientSeq, rejection: { code: code!, message: r.string() } }
    }
  }
  return { type: "results", docId, outcomes }
}

const SERVER_READERS = new Map<number, Reader<ServerMessage>>([
  [Type.WELCOME, (r) => ({ type: "welcome", protocol: r.varint(), clientId: r.string() })],
  [Type.REFUSED, (r): Refused => {
    const code = r.string() as RefusalCode
    if (!REFUSAL_CODES.includes(code)) bad(`Refusal code ${show(code)}.`)
    const message = r.string()
    const opt = optionalFields(r, 3)
    const m: { -readonly [K in keyof Refused]: Refused[K] } = { type: "refused", code, message }
    if (opt & 1) m.protocol = { min: r.varint(), max: r.varint() }
    if (opt & 2) m.machine = r.string()
    return m
  }],
  [Type.ENTRIES, (r) => readEntriesBody(r, r.string(), false)],
  [Type.RESULTS, (r) => readResultsBody(r, r.string())],
  [Type.ENTRIES2, (r) => readEntriesBody(r, readChannel(r), true)],
  [Type.RESULTS2, (r) => ({ ...readResultsBody(r, readChannel(r)), compact: true })],
  [Type.SYNCED, (r) => ({ type: "synced", docId: r.string(), seq: r.varint() })],
  [Type.CHECKPOINT, (r) => ({ type: "checkpoint", docId: r.string(), seq: r.varint(), hash: r.string() })],
  [Type.STATE, (r) => ({ type: "state", docId: r.string(), seq: r.varint(), hash: r.string(), state: r.bytes() })],
  [Type.ERROR, (r) => {
    const code = r.string()
    const message = r.string()
    const opt = optionalFields(r, 3)
    const m: { -readonly [K in keyof ErrorMsg]: ErrorMsg[K] } = { type: "error", code, message }
    if (opt & 1) m.docId = r.string()
    if (opt & 2) m.seq = r.varint()
    return m
  }],
  [Type.SNAPSHOT_BEGIN, (r) => ({
    type: "snapshot-begin", docId: r.string(), snapshotId: r.varint(), seq: r.varint(), hash: r.string(), size: r.varint(),
  })],
  [Type.SNAPSHOT_CHUNK, (r) => ({
    type: "snapshot-chunk", docId: r.string(), snapshotId: r.varint(), offset: r.varint(), bytes: r.bytes(),
  })],
  [Type.SNAPSHOT_END, (r) => ({ type: "snapshot-end", docId: r.string(), snapshotId: r.varint() })],
  [Type.PRESENCE, (r) => ({ type: "presence", docId: r.string(), clientId: r.string(), state: readValue(r) })],
  [Type.KEEPALIVE, () => ({ type: "keepalive" })],
])

/** Decodes a frame the hub sent (a client's side). Never throws. */
export const decodeServerMessage = (frame: Uint8Array, options?: CodecOptions): Decoded<ServerMessage> =>
  decodeFrame(frame, options, SERVER_READERS, CLIENT_TYPES, "server")
