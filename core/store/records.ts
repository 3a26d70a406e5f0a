/**
 * Value encodings of stored records: canonical-encoded tuples, so a record is compact and
 * any corruption is a typed `storage-corrupt` error naming the document and key.
 */
import { decodeCanonical, encodeCanonical, isBytes, writeValue } from "../canonical.js"
import { ByteWriter, hexOf } from "../bytes.js"
import type { Entry, Checkpoint, Outcome } from "../entry.js"
import { CanonError, canonError, type Rejection, type RejectionCode } from "../errors.js"


/** Decodes a record, turning any failure into `storage-corrupt` with where it was. */
export const decodeRecord = <T>(bytes: Uint8Array, what: string, docId: string, key: Uint8Array, check: (v: unknown) => T): T => {
  try {
    return check(decodeCanonical(bytes))
  } catch (e) {
    const why = e instanceof CanonError ? e.message : String(e)
    throw canonError("storage-corrupt", `The stored ${what} of document "${docId}" (key ${hexOf(key)}) is unreadable: ${why}`)
  }
}

const fail = (what: string): never => {
  throw new Error(`not a valid ${what}`)
}
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)
const isStr = (v: unknown): v is string => typeof v === "string"

// ---- entries: [time, clientId, clientSeq, name, args] ----

export const encodeEntry = (e: Entry): Uint8Array => encodeCanonical([e.time, e.clientId, e.clientSeq, e.name, e.args])
export const writeEntry = (w: ByteWriter, e: Entry): void => writeValue(w, [e.time, e.clientId, e.clientSeq, e.name, e.args])

export const entryChecker = (seq: number) => (v: unknown): Entry => {
  if (!Array.isArray(v) || v.length !== 5 || !isNum(v[0]) || !isStr(v[1]) || !isNum(v[2]) || !isStr(v[3])) return fail("entry")
  return { seq, time: v[0], clientId: v[1], clientSeq: v[2], name: v[3], args: v[4] }
}

// ---- authority head: [machine, version, seq, lastTime, checkpointSeq, checkpointHash] ----

export interface AuthorityHead {
  readonly machine: string
  readonly version: number
  readonly seq: number
  readonly lastTime: number
  readonly checkpoint: Checkpoint | undefined
}

const headTuple = (h: AuthorityHead): unknown => [h.machine, h.version, h.seq, h.lastTime, h.checkpoint?.seq ?? 0, h.checkpoint?.hash ?? ""]
export const writeHead = (w: ByteWriter, h: AuthorityHead): void => writeValue(w, headTuple(h))

export const checkHead = (v: unknown): AuthorityHead => {
  if (!Array.isArray(v) || v.length !== 6 || !isStr(v[0]) || !isNum(v[1]) || !isNum(v[2]) || !isNum(v[3]) || !isNum(v[4]) || !isStr(v[5])) return fail("head")
  return { machine: v[0], version: v[1], seq: v[2], lastTime: v[3], checkpoint: v[4] > 0 ? { seq: v[4], hash: v[5] } : undefined }
}

// ---- legacy idempotency record (format 1): [last, acked, [[clientSeq, seq | -1, code, message], ...]] ----
// Storage format 2 holds none: migrate-client-records.ts converts every one to the mark and
// outcome runs below when a format-1 store is opened.

export interface LegacyClientRecord {
  readonly last: number
  readonly acked: number
  readonly outcomes: ReadonlyArray<Outcome>
}

export const checkLegacyClient = (v: unknown): LegacyClientRecord => {
  if (!Array.isArray(v) || v.length !== 3 || !isNum(v[0]) || !isNum(v[1]) || !Array.isArray(v[2])) return fail("client record")
  const outcomes: Outcome[] = []
  for (const o of v[2] as unknown[]) {
    if (!Array.isArray(o) || !isNum(o[0]) || !isNum(o[1])) return fail("outcome")
    if (o[1] >= 0) outcomes.push({ clientSeq: o[0], seq: o[1] })
    else {
      if (!isStr(o[2]) || !isStr(o[3])) return fail("outcome")
      outcomes.push({ clientSeq: o[0], rejection: { code: o[2] as RejectionCode, message: o[3] } })
    }
  }
  return { last: v[0], acked: v[1], outcomes }
}

// ---- client mark (per document and client): [last, acked, evictedThrough, evictedBound, incarnation] ----

/** What a document remembers of a client forever: the high-water mark that makes exactly-once hold. */
export interface ClientMark {
  /** Highest clientSeq processed (applied or rejected). */
  last: number
  /** The client stored every outcome up to here: they are forgotten. */
  acked: number
  /** Outcomes up to here were forgotten without an ack (the window overflowed). */
  evictedThrough: number
  /** No forgotten outcome has a seq above this: "applied at seq <= evictedBound". */
  evictedBound: number
  /** The client incarnation that processed `last`. */
  incarnation: number
}

const markTuple = (m: ClientMark): unknown => [m.last, m.acked, m.evictedThrough, m.evictedBound, m.incarnation]
export const writeMark = (w: ByteWriter, m: ClientMark): void => writeValue(w, markTuple(m))
export const encodeMark = (m: ClientMark): Uint8Array => encodeCanonical(markTuple(m))

export const checkMark = (v: unknown): ClientMark => {
  if (!Array.isArray(v) || v.length !== 5 || !v.every(isNum)) return fail("client mark")
  const [last, acked, evictedThrough, evictedBound, incarnation] = v as number[]
  return { last: last!, acked: acked!, evictedThrough: evictedThrough!, evictedBound: evictedBound!, incarnation: incarnation! }
}

// ---- outcome run: [incarnation, [[hash, seq, madeAs?] | [hash, -1, code, message, madeAs?], ...]] ----
// The outcomes of one client's contiguous clientSeqs processed in one commit, keyed by the
// first clientSeq: written once, deleted when acknowledged or pushed out of the window.
// (`madeAs` was added compatibly: a reader that does not know it ignores the extra element.)

/**
 * One outcome as the authority keeps it: `hash` identifies the command it answers; `madeAs`,
 * the number the command was made under if it was renumbered before it came (protocol 3).
 */
export type StoredOutcome =
  | { readonly hash: number; readonly seq: number; readonly madeAs?: number }
  | { readonly hash: number; readonly rejection: Rejection; readonly madeAs?: number }

export interface OutcomeRun {
  readonly first: number
  readonly incarnation: number
  readonly outcomes: ReadonlyArray<StoredOutcome>
}

const runTuple = (r: OutcomeRun): unknown => [
  r.incarnation,
  r.outcomes.map((o) => {
    const t: unknown[] = "seq" in o ? [o.hash, o.seq] : [o.hash, -1, o.rejection.code, o.rejection.message]
    if (o.madeAs !== undefined) t.push(o.madeAs)
    return t
  }),
]
export const writeRun = (w: ByteWriter, r: OutcomeRun): void => writeValue(w, runTuple(r))
export const encodeRun = (r: OutcomeRun): Uint8Array => encodeCanonical(runTuple(r))

export const runChecker = (first: number) => (v: unknown): OutcomeRun => {
  if (!Array.isArray(v) || v.length !== 2 || !isNum(v[0]) || !Array.isArray(v[1])) return fail("outcome run")
  const outcomes: StoredOutcome[] = []
  for (const o of v[1] as unknown[]) {
    if (!Array.isArray(o) || !isNum(o[0]) || !isNum(o[1])) return fail("outcome")
    const madeAs = o[o[1] >= 0 ? 2 : 4]
    if (madeAs !== undefined && !isNum(madeAs)) return fail("outcome")
    const moved = madeAs !== undefined ? { madeAs } : {}
    if (o[1] >= 0) outcomes.push({ hash: o[0], seq: o[1], ...moved })
    else {
      if (!isStr(o[2]) || !isStr(o[3])) return fail("outcome")
      outcomes.push({ hash: o[0], rejection: { code: o[2] as RejectionCode, message: o[3] }, ...moved })
    }
  }
  return { first, incarnation: v[0], outcomes }
}

// ---- client identity (hub-wide): [principal, [[incarnation, secretHash], ...]] ----

/** Who owns a clientId, and the hashes of the secrets its incarnations proved themselves with. */
export interface Identity {
  readonly principal: string
  readonly incarnations: ReadonlyArray<{ readonly incarnation: number; readonly secretHash: string }>
}

export const encodeIdentity = (i: Identity): Uint8Array =>
  encodeCanonical([i.principal, i.incarnations.map((x) => [x.incarnation, x.secretHash])])

export const checkIdentity = (v: unknown): Identity => {
  if (!Array.isArray(v) || v.length !== 2 || !isStr(v[0]) || !Array.isArray(v[1])) return fail("client identity")
  const incarnations: { incarnation: number; secretHash: string }[] = []
  for (const x of v[1] as unknown[]) {
    if (!Array.isArray(x) || x.length !== 2 || !isNum(x[0]) || !isStr(x[1])) return fail("client identity")
    incarnations.push({ incarnation: x[0], secretHash: x[1] })
  }
  return { principal: v[0], incarnations }
}

// ---- replica meta: [machine, version, confirmedSeq, nextClientSeq] ----

export interface ReplicaMeta {
  readonly machine: string
  readonly version: number
  readonly confirmedSeq: number
  readonly nextClientSeq: number
}

export const encodeReplicaMeta = (m: ReplicaMeta): Uint8Array => encodeCanonical([m.machine, m.version, m.confirmedSeq, m.nextClientSeq])

export const checkReplicaMeta = (v: unknown): ReplicaMeta => {
  if (!Array.isArray(v) || v.length !== 4 || !isStr(v[0]) || !isNum(v[1]) || !isNum(v[2]) || !isNum(v[3])) return fail("replica meta")
  return { machine: v[0], version: v[1], confirmedSeq: v[2], nextClientSeq: v[3] }
}

// ---- replica snapshot: [seq, stateBytes] ----

export const encodeSnapshot = (seq: number, state: Uint8Array): Uint8Array => encodeCanonical([seq, state])

export const checkSnapshot = (v: unknown): { seq: number; state: Uint8Array } => {
  if (!Array.isArray(v) || v.length !== 2 || !isNum(v[0]) || !isBytes(v[1])) return fail("snapshot")
  return { seq: v[0], state: v[1] }
}

// ---- outbox: [name, args, madeAs?] ----
// (`madeAs`, the number a renumbered command was made under, was added compatibly.)

export const encodeOutbox = (name: string, args: unknown, madeAs?: number): Uint8Array => encodeCanonical(madeAs === undefined ? [name, args] : [name, args, madeAs])

export const checkOutbox = (v: unknown): { name: string; args: unknown; madeAs?: number } => {
  // (madeAs is sent as it is: a number a submit can carry, or the record is corrupt.)
  if (!Array.isArray(v) || v.length < 2 || v.length > 3 || !isStr(v[0]) || v.length > 2 && !(Number.isSafeInteger(v[2]) && (v[2] as number) > 0)) return fail("outbox record")
  return { name: v[0], args: v[1], madeAs: v[2] }
}
