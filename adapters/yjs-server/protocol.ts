/**
 * The y-websocket wire protocol (y-websocket 3.x, y-protocols 1.x), as bytes. Every integer
 * is a lib0 varUint (LEB128, the same as Canon's varint); byte arrays and strings are a
 * varUint length then the bytes.
 *
 *   sync:        0, syncType (0 step1: state vector | 1 step2: V1 update | 2 update: V1 update), bytes
 *   awareness:   1, bytes( n, n x (clientID, clock, string JSON state; "null" = gone) )
 *   auth:        2, 0 (permission denied), string reason
 *   queryAwareness: 3
 *
 * The same messages run over a PeerLink between replicas (adapters/peer/yjs-sync.ts), so a
 * Canon replica, a stock y-websocket client and the hub all speak one protocol.
 */
import { ByteReader, ByteWriter } from "../../core/bytes.js"
import { MAX_VALUE_DEPTH, jsonTooDeep } from "../yjs/integrable.js"

export type YMessage =
  | { readonly type: "step1"; readonly stateVector: Uint8Array }
  | { readonly type: "step2"; readonly update: Uint8Array }
  | { readonly type: "update"; readonly update: Uint8Array }
  | { readonly type: "awareness"; readonly update: Uint8Array }
  | { readonly type: "auth-denied"; readonly reason: string }
  | { readonly type: "query-awareness" }
  | { readonly type: "unknown"; readonly code: number }

export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const MSG_AUTH = 2
export const MSG_QUERY_AWARENESS = 3

/** Decodes one message; throws (a CanonError `decode-failed`) on a malformed one. */
export const decodeYMessage = (bytes: Uint8Array): YMessage => {
  const r = new ByteReader(bytes)
  const type = r.varint()
  switch (type) {
    case MSG_SYNC: {
      const step = r.varint()
      const payload = r.raw(r.varint())
      if (step === 0) return { type: "step1", stateVector: payload }
      if (step === 1) return { type: "step2", update: payload }
      if (step === 2) return { type: "update", update: payload }
      return { type: "unknown", code: 100 + step }
    }
    case MSG_AWARENESS:
      return { type: "awareness", update: r.raw(r.varint()) }
    case MSG_AUTH:
      return r.varint() === 0 ? { type: "auth-denied", reason: r.string() } : { type: "unknown", code: 200 }
    case MSG_QUERY_AWARENESS:
      return { type: "query-awareness" }
    default:
      return { type: "unknown", code: type }
  }
}

const sync = (step: number, payload: Uint8Array): Uint8Array => {
  const w = new ByteWriter(payload.length + 12)
  w.varint(MSG_SYNC)
  w.varint(step)
  w.bytes(payload)
  return w.finish()
}

export const encodeStep1 = (stateVector: Uint8Array): Uint8Array => sync(0, stateVector)
export const encodeStep2 = (update: Uint8Array): Uint8Array => sync(1, update)
export const encodeUpdate = (update: Uint8Array): Uint8Array => sync(2, update)

export const encodeAwareness = (awarenessUpdate: Uint8Array): Uint8Array => {
  const w = new ByteWriter(awarenessUpdate.length + 8)
  w.varint(MSG_AWARENESS)
  w.bytes(awarenessUpdate)
  return w.finish()
}

export const encodeAuthDenied = (reason: string): Uint8Array => {
  const w = new ByteWriter(reason.length * 3 + 8)
  w.varint(MSG_AUTH)
  w.varint(0)
  w.string(reason)
  return w.finish()
}

export const encodeQueryAwareness = (): Uint8Array => new Uint8Array([MSG_QUERY_AWARENESS])

/** An awareness message with no entries: changes nothing, answered by nothing; keeps y-websocket's 30 s watchdog quiet. */
export const AWARENESS_KEEPALIVE = new Uint8Array([MSG_AWARENESS, 1, 0])

export interface AwarenessEntry {
  readonly clientID: number
  readonly clock: number
  /** The JSON text of the state; "null" means the client is gone. */
  readonly state: string
}

export const decodeAwarenessUpdate = (update: Uint8Array, maxEntries: number): AwarenessEntry[] => {
  const r = new ByteReader(update)
  const n = r.varint()
  if (n > maxEntries) throw new RangeError(`An awareness update with ${n} entries (at most ${maxEntries}).`)
  const out: AwarenessEntry[] = []
  for (let i = 0; i < n; i++) out.push({ clientID: r.varint(), clock: r.varint(), state: r.string() })
  return out
}

/**
 * Why an awareness state (its text) is no state a stock client can hold, or undefined. A stock
 * client (y-protocols applyAwarenessUpdate) reads each state with JSON.parse, inside its
 * socket's message handler: text that is not JSON throws there (Node: the process dies;
 * browsers: the rest of that message is lost). It then compares a renewal with the state it
 * holds and re-encodes states it relays, both recursively (equalityDeep, JSON.stringify), so a
 * state nested past the stack (some thousands of levels) throws RangeError later. "null"
 * (a removal) is JSON.
 */
export const awarenessStateProblem = (state: string): string | undefined => {
  const c = canonicalAwarenessState(state)
  return "problem" in c ? c.problem : undefined
}

/**
 * An awareness state as a stock client holds and sends it on, or why it is none (see
 * `awarenessStateProblem`): y-protocols encodes `JSON.stringify` of what `JSON.parse` read
 * (`1e20` comes back as 21 digits, ` null` as `null`). Kept and relayed as this text, what a
 * stock client sends back of others' states (it relays every change it is sent) is the bytes
 * the hub sent it.
 */
export const canonicalAwarenessState = (state: string): { readonly state: string } | { readonly problem: string } => {
  if (state === "null") return { state }
  // Depth first, without building anything deep (the Yjs engine's scan of JSON contents).
  if (jsonTooDeep((i) => state.charCodeAt(i), 0, state.length)) {
    return { problem: `An awareness state nests deeper than ${MAX_VALUE_DEPTH} levels: clients compare and re-encode states recursively. Flatten it.` }
  }
  let value: unknown
  try {
    value = JSON.parse(state)
  } catch {
    // The parser's message quotes the text: not echoed back to its sender.
    return { problem: "An awareness state must be JSON text (clients read it with JSON.parse): set it with awareness.setLocalState(value)." }
  }
  // Within the depth bound: stringify cannot overflow the stack.
  return { state: JSON.stringify(value) }
}

/**
 * Clients a step1's state vector may list beyond those of the document: a sender's copy holds
 * the document's clients plus those whose edits have not reached it yet (its own sessions
 * while offline, a peer it synced with elsewhere), a handful; thousands would be months of
 * offline sessions. A vector listing more is answered as an empty one (EMPTY_STATE_VECTOR),
 * from its count alone, before its entries are read: 1.5 million entries (6 MB) cost a hub
 * 0.8 s to decode. The whole document is a right answer to any step1 (the peer keeps what it
 * lacks), so an honest peer past the bound (a hub restored from an old backup) still syncs.
 * At this bound a vector costs well under a millisecond to read.
 */
export const MAX_UNSEEN_STATE_VECTOR_CLIENTS = 4096

/** A state vector of no clients: asks for the whole document. */
export const EMPTY_STATE_VECTOR: Uint8Array = new Uint8Array([0])

/** How many clients a state vector lists (its first varUint), read without decoding them; throws on a malformed one. */
export const stateVectorLength = (stateVector: Uint8Array): number => new ByteReader(stateVector).varint()

/**
 * The state vector a step1 is answered from, for a document of `docClients` clients: the one
 * sent, or past MAX_UNSEEN_STATE_VECTOR_CLIENTS an empty one (its entries never read);
 * undefined when its count does not decode.
 */
export const stateVectorToAnswer = (stateVector: Uint8Array, docClients: number): Uint8Array | undefined => {
  let clients: number
  try {
    clients = stateVectorLength(stateVector)
  } catch {
    return undefined
  }
  return clients > docClients + MAX_UNSEEN_STATE_VECTOR_CLIENTS ? EMPTY_STATE_VECTOR : stateVector
}

/**
 * Reads a state vector's entries (clientID, clock) in order, without building a map; throws
 * (a CanonError `decode-failed`) on a malformed one.
 */
export const forEachStateVectorEntry = (stateVector: Uint8Array, each: (client: number, clock: number) => void): void => {
  const r = new ByteReader(stateVector)
  const n = r.varint()
  for (let i = 0; i < n; i++) each(r.varint(), r.varint())
}

export const encodeAwarenessUpdate = (entries: ReadonlyArray<AwarenessEntry>): Uint8Array => {
  const w = new ByteWriter(64)
  w.varint(entries.length)
  for (const e of entries) {
    w.varint(e.clientID)
    w.varint(e.clock)
    w.string(e.state)
  }
  return w.finish()
}
