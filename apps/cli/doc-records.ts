/**
 * What one document's records in a data directory amount to, read without writing and
 * without holding more than a page of rows at a time: bytes per kind of record, the log
 * that is kept, the compaction horizon, the stored snapshots and whether each verifies,
 * and what a crash left behind (chunks of an unfinished snapshot, entries at or below the
 * horizon that a cut compaction did not delete yet). Shared by `canon inspect` and
 * `canon compact`.
 */
import { CanonError, type KVStore } from "../../core/index.js"
import { AuthorityStore } from "../../core/internal.js"
import * as K from "../../core/store/keys.js"
import { StreamHash } from "../../core/snapshot/stream-hash.js"
import type { SnapshotMeta } from "../../core/store/snapshot-store.js"

/** Rows read per call while scanning: bounded memory whatever the store holds. */
const PAGE = 256
/** Snapshot chunks are up to 256 KiB each: fewer per call. */
const CHUNK_PAGE = 8

/** The smallest key after `key` (keys sort bytewise). */
const after = (key: Uint8Array): Uint8Array => {
  const out = new Uint8Array(key.length + 1)
  out.set(key)
  return out
}

/** Calls `row` for every key in [gte, lt), a page at a time. */
export const scan = async (kv: KVStore, gte: Uint8Array, lt: Uint8Array, row: (key: Uint8Array, value: Uint8Array) => void, page = PAGE): Promise<void> => {
  let from = gte
  for (;;) {
    const rows = await kv.range({ gte: from, lt, limit: page })
    for (const [k, v] of rows) row(k, v)
    if (rows.length < page) return
    from = after(rows[rows.length - 1]![0])
  }
}

/** Keys in [gte, lt), counted a page at a time (values are read too: the port has no key-only range). */
export const countKeys = async (kv: KVStore, gte: Uint8Array, lt: Uint8Array): Promise<number> => {
  let n = 0
  await scan(kv, gte, lt, () => n++)
  return n
}

/** Bytes (keys and values) of one document's records, by kind. */
export interface RecordBytes {
  readonly log: number
  readonly snapshots: number
  readonly clients: number
  readonly checkpoints: number
  /** Head and horizon. */
  readonly other: number
  readonly total: number
}

export interface LogShape {
  /** Entries stored (leftovers at or below the horizon included). */
  readonly entries: number
  /** Entries stored at or below the horizon: a compaction cut short (the hub deletes them on load). */
  readonly belowHorizon: number
  /** Lowest and highest stored seq above the horizon, if any. */
  readonly first: number | undefined
  readonly last: number | undefined
}

export type Verdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string }

export interface SnapshotCheck {
  readonly meta: SnapshotMeta
  readonly verdict: Verdict
}

export const fmt = (n: number): string => n.toLocaleString("en-US")
/** "1 entry", "2 entries", "1,000 entries". */
export const plural = (n: number, one: string, many: string): string => `${fmt(n)} ${n === 1 ? one : many}`
export const kib = (n: number): string => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`)

const range = (prefix: Uint8Array): [Uint8Array, Uint8Array] => [prefix, K.prefixEnd(prefix)]

export const recordBytes = async (kv: KVStore, docId: string): Promise<RecordBytes> => {
  const sum = async (...prefixes: Uint8Array[]): Promise<number> => {
    let bytes = 0
    for (const p of prefixes) await scan(kv, ...range(p), (k, v) => { bytes += k.length + v.length }, p[1] === 0x74 ? CHUNK_PAGE : PAGE)
    return bytes
  }
  const log = await sum(K.authEntryPrefix(docId))
  const snapshots = await sum(K.authSnapshotPrefix(docId), K.authChunkPrefix(docId))
  const clients = await sum(K.authClientPrefix(docId), K.authMarkPrefix(docId), K.authOutcomeDocPrefix(docId))
  const checkpoints = await sum(K.authCheckpointPrefix(docId))
  let other = 0
  for (const key of [K.authHead(docId), K.authHorizon(docId)]) {
    const v = await kv.get(key)
    if (v !== undefined) other += key.length + v.length
  }
  return { log, snapshots, clients, checkpoints, other, total: log + snapshots + clients + checkpoints + other }
}

export const describeBytes = (b: RecordBytes): string =>
  `${kib(b.total)} of records: log ${kib(b.log)}, snapshots ${kib(b.snapshots)}, client records ${kib(b.clients)}, checkpoints ${kib(b.checkpoints)}`

export const logShape = async (kv: KVStore, docId: string, horizon: number): Promise<LogShape> => {
  let entries = 0
  let belowHorizon = 0
  let first: number | undefined
  let last: number | undefined
  const prefix = K.authEntryPrefix(docId)
  const length = K.entryKeyLength(prefix)
  await scan(kv, ...range(prefix), (k) => {
    if (k.length !== length) return
    const seq = K.seqFromKey(k)
    entries++
    if (seq <= horizon) belowHorizon++
    else {
      first ??= seq
      last = seq
    }
  })
  return { entries, belowHorizon, first, last }
}

/**
 * Whether a stored snapshot is whole: each of its chunks is read (one at a time, never the
 * whole snapshot in one buffer) and hashed; the bytes must be exactly its size and hash to
 * its meta's hash, the state hash at its seq.
 */
export const verifySnapshot = async (kv: KVStore, docId: string, meta: SnapshotMeta): Promise<Verdict> => {
  const hash = new StreamHash()
  for (let i = 0; i < meta.chunks; i++) {
    const chunk = await kv.get(K.authChunk(docId, meta.seq, i))
    if (chunk === undefined) return { ok: false, reason: `chunk ${fmt(i)} of its ${fmt(meta.chunks)} is missing` }
    hash.update(chunk)
    if (hash.length > meta.size) return { ok: false, reason: `its chunks hold more than its ${fmt(meta.size)} bytes` }
  }
  if (hash.length !== meta.size) return { ok: false, reason: `its chunks hold ${fmt(hash.length)} of its ${fmt(meta.size)} bytes` }
  const actual = hash.digest()
  if (actual !== meta.hash) return { ok: false, reason: `its chunks hash to ${actual}, not ${meta.hash}` }
  return { ok: true }
}

/** Seqs of snapshots whose chunks are stored without a meta (a write cut by a crash), with their chunk counts. */
export const orphanChunks = async (kv: KVStore, docId: string, complete: ReadonlySet<number>): Promise<Map<number, number>> => {
  const prefix = K.authChunkPrefix(docId)
  const out = new Map<number, number>()
  await scan(kv, ...range(prefix), (k) => {
    const seq = K.seqFromKey(k.subarray(0, prefix.length + 8))
    if (!complete.has(seq)) out.set(seq, (out.get(seq) ?? 0) + 1)
  }, CHUNK_PAGE)
  return out
}

/** Everything `inspect` and `compact` say about a document's snapshots and compaction. */
export interface DocSurvey {
  readonly horizon: number
  readonly bytes: RecordBytes
  readonly log: LogShape
  /** Newest first; each verified. Empty with `metasProblem` when the metas cannot be read. */
  readonly snapshots: ReadonlyArray<SnapshotCheck>
  readonly metasProblem: string | undefined
  readonly orphans: ReadonlyMap<number, number>
}

export const surveyDoc = async (kv: KVStore, docId: string): Promise<DocSurvey> => {
  const store = new AuthorityStore(kv, { readOnly: true })
  const horizon = await store.snapshots.horizon(docId)
  let metas: SnapshotMeta[] = []
  let metasProblem: string | undefined
  try {
    metas = await store.snapshots.metas(docId)
  } catch (e) {
    if (!(e instanceof CanonError)) throw e
    metasProblem = e.message
  }
  const snapshots: SnapshotCheck[] = []
  for (const meta of metas) snapshots.push({ meta, verdict: await verifySnapshot(kv, docId, meta) })
  return {
    horizon,
    bytes: await recordBytes(kv, docId),
    log: await logShape(kv, docId, horizon),
    snapshots,
    metasProblem,
    orphans: metasProblem === undefined ? await orphanChunks(kv, docId, new Set(metas.map((m) => m.seq))) : new Map(),
  }
}

/** The newest snapshot that verifies, at or below `maxSeq`. */
export const newestVerified = (survey: DocSurvey, maxSeq: number): SnapshotMeta | undefined =>
  survey.snapshots.find((s) => s.verdict.ok && s.meta.seq <= maxSeq)?.meta
