/**
 * Storage format 1 -> 2: every format-1 idempotency record becomes a client mark plus
 * outcome runs.
 *
 * The layout change is real and older than this step: commit e4be877 ("exactly-once
 * forever") replaced the one record per (document, client), `"a" "c" <docId> <clientId>` ->
 * [last, acked, outcomes], with a mark kept forever (`"a" "w"`) and append-only outcome runs
 * (`"a" "o"`), but left the stored format at 1 and converted a record only when its client
 * next submitted (core/authority/client-table.ts, `loadOne`). A client that never came back
 * kept its record in the old layout for good, and every build had to keep reading it. This
 * step converts all of them when a format-1 store is opened, so a format-2 store holds none.
 *
 * The conversion is the one `loadOne` makes (test/storage-format.test.ts checks the two give
 * the same records): format 1 kept no command hashes or incarnations, so the runs carry hash 0
 * and incarnation 0, which match any retry.
 *
 * Crash safety: the records are converted in slices of SLICE, in key order. Each slice is ONE
 * atomic batch that writes the new records of its clients and deletes their old ones, so
 * after a kill a client is either wholly old or wholly new, and what is still in the old
 * layout is exactly what is left to do: running the step again converts the rest. A record
 * whose client already has a mark is a leftover (the mark is newer; `loadOne` ignores such a
 * record too) and is only deleted.
 */
import type { BatchOp, KVStore } from "../ports/storage.js"
import { ByteReader, hexOf } from "../bytes.js"
import { canonError } from "../errors.js"
import * as K from "./keys.js"
import {
  type ClientMark, type LegacyClientRecord, type OutcomeRun, type StoredOutcome, checkLegacyClient, decodeRecord, encodeMark, encodeRun,
} from "./records.js"
import type { MigrationStep } from "./migration.js"

/** Old records converted per atomic batch: bounded work (and batch size) per write. */
export const SLICE = 256

const A = 0x61
const CLIENT = 0x63 // "a" "c": format-1 idempotency record
const MARK = 0x77 // "a" "w": client mark

const legacyStart = Uint8Array.of(A, CLIENT)
const legacyEnd = K.prefixEnd(legacyStart)

/** The mark and runs a format-1 record stands for (the conversion of client-table.ts `loadOne`). */
export const convertLegacyClient = (legacy: LegacyClientRecord): { mark: ClientMark; runs: OutcomeRun[] } => {
  const runs: Array<{ first: number; incarnation: number; outcomes: StoredOutcome[] }> = []
  let maxSeq = 0
  for (const o of legacy.outcomes) {
    const stored: StoredOutcome = "seq" in o ? { hash: 0, seq: o.seq } : { hash: 0, rejection: "rejection" in o ? o.rejection : { code: "outcome-expired", message: "" } }
    if ("seq" in o) maxSeq = Math.max(maxSeq, o.seq)
    const last = runs[runs.length - 1]
    if (last !== undefined && last.first + last.outcomes.length === o.clientSeq) last.outcomes.push(stored)
    else runs.push({ first: o.clientSeq, incarnation: 0, outcomes: [stored] })
  }
  const firstKept = runs[0]?.first ?? legacy.last + 1
  const mark: ClientMark = {
    last: legacy.last,
    acked: legacy.acked,
    evictedThrough: Math.max(legacy.acked, firstKept - 1),
    // Format 1 did not record the seqs it forgot: the highest seq it still knew is only a floor.
    evictedBound: maxSeq,
    incarnation: 0,
  }
  return { mark, runs }
}

/** docId and clientId of a format-1 record's key (`"a" "c" <docId> <clientId>`). */
const idsOf = (key: Uint8Array): { docId: string; clientId: string } => {
  try {
    const r = new ByteReader(key)
    r.pos = 2
    const docId = r.string()
    const clientId = r.string()
    if (!r.done()) throw new Error("trailing bytes")
    return { docId, clientId }
  } catch {
    throw canonError("storage-corrupt", `The key ${hexOf(key)} is in the range of format-1 client records but is not one.`)
  }
}

/** The mark key of the same document and client: the same bytes under "a" "w". */
const markKeyOf = (legacyKey: Uint8Array): Uint8Array => {
  const k = legacyKey.slice()
  k[1] = MARK
  return k
}

/** The smallest key after `k`. */
const after = (k: Uint8Array): Uint8Array => {
  const out = new Uint8Array(k.length + 1)
  out.set(k)
  return out
}

/** Converts one slice (rows in key order) into one batch. */
const sliceOps = async (kv: KVStore, rows: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): Promise<BatchOp[]> => {
  // Which of this slice's clients have a mark: marks sort in the same order as the records, so
  // one bounded range read usually answers; if other clients' marks crowd that range, one get each.
  const lo = markKeyOf(rows[0]![0])
  const hi = after(markKeyOf(rows[rows.length - 1]![0]))
  const marked = new Set<string>()
  const inRange = await kv.range({ gte: lo, lt: hi, limit: 4 * SLICE })
  if (inRange.length < 4 * SLICE) for (const [k] of inRange) marked.add(hexOf(k))
  else {
    const keys = rows.map(([k]) => markKeyOf(k))
    const found = await Promise.all(keys.map((k) => kv.get(k)))
    keys.forEach((k, i) => found[i] !== undefined && marked.add(hexOf(k)))
  }
  const ops: BatchOp[] = []
  for (const [key, value] of rows) {
    const { docId, clientId } = idsOf(key)
    ops.push({ type: "del", key })
    if (marked.has(hexOf(markKeyOf(key)))) continue
    const legacy = decodeRecord(value, `format-1 client record of "${clientId}"`, docId, key, checkLegacyClient)
    const { mark, runs } = convertLegacyClient(legacy)
    for (const run of runs) ops.push({ type: "put", key: K.authOutcome(docId, clientId, run.first), value: encodeRun(run) })
    ops.push({ type: "put", key: K.authMark(docId, clientId), value: encodeMark(mark) })
  }
  return ops
}

export const clientRecordsToMarks: MigrationStep = {
  from: 1,
  to: 2,
  what: "format-1 idempotency records to client marks and outcome runs",
  // Only the client table reads these records, and only a read-write hub runs it.
  readableBefore: true,
  async run(kv, progress) {
    let from: Uint8Array = legacyStart
    let done = 0
    for (;;) {
      const rows = await kv.range({ gte: from, lt: legacyEnd, limit: SLICE })
      if (rows.length === 0) return
      await kv.batch(await sliceOps(kv, rows))
      done += rows.length
      progress(done)
      if (rows.length < SLICE) return
      // Past the last converted key: LevelDB would otherwise walk the tombstones of every
      // slice again (a restart after a kill starts over from the first key, which is cheap).
      from = after(rows[rows.length - 1]![0])
    }
  },
}
