/**
 * Authority snapshots and log compaction, over a KVStore.
 *
 * A snapshot of a document at seq S is its state's canonical bytes in chunks (keys per chunk,
 * so neither writing nor reading needs the whole encoding in one buffer) plus a meta record
 * written last: a snapshot without its meta is an unfinished write (a crash) and is never
 * read; its chunks are deleted later. The meta's hash is the state hash at S, so a snapshot
 * is verified by hashing its chunks as they are read.
 *
 * Compaction moves the horizon (entries at or below it may be gone) and then deletes those
 * entries page by page, from where the previous compaction stopped, and the checkpoints below
 * the horizon with them (a checkpoint is the state hash after an entry: once the entries up to
 * it are gone nothing replays to it, and the head's own checkpoint lives in the head record),
 * so a document keeps the checkpoints of the log it keeps, not of its whole history. The horizon never passes
 * the newest complete snapshot, so load (the newest verified snapshot, then the log tail)
 * always has what it needs; a crash between the horizon write and the deletes leaves entries
 * that the next compaction (or load) deletes: the horizon record says where deletes stopped.
 */
import type { BatchOp, KVStore } from "../ports/storage.js"
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import { canonError } from "../errors.js"
import * as K from "./keys.js"
import { decodeRecord } from "./records.js"

/** A complete snapshot: what it holds and how to read it back. */
export interface SnapshotMeta {
  readonly seq: number
  /** The state hash at seq (hash of the canonical bytes). */
  readonly hash: string
  /** Bytes of the canonical encoding. */
  readonly size: number
  readonly chunks: number
  /** The authority's last entry time at seq (times never go backwards across a reload). */
  readonly lastTime: number
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)

const checkMeta = (seq: number) => (v: unknown): SnapshotMeta => {
  if (!Array.isArray(v) || v.length !== 4 || typeof v[0] !== "string" || !isNum(v[1]) || !isNum(v[2]) || !isNum(v[3])) {
    throw new Error("not a valid snapshot meta")
  }
  return { seq, hash: v[0], size: v[1], chunks: v[2], lastTime: v[3] }
}

/** Entries deleted per batch while compacting: bounded work per write. */
const DELETE_PAGE = 1024

export class SnapshotStore {
  constructor(private readonly kv: KVStore, private readonly sync: boolean) {}

  /** Writes chunks [first, first + chunks.length) of the snapshot at seq. */
  async putChunks(docId: string, seq: number, first: number, chunks: ReadonlyArray<Uint8Array>): Promise<void> {
    await this.kv.batch(chunks.map((value, i) => ({ type: "put" as const, key: K.authChunk(docId, seq, first + i), value })))
  }

  /** Marks the snapshot complete (after all its chunks are written). Durable before it resolves. */
  async putMeta(docId: string, meta: SnapshotMeta): Promise<void> {
    await this.kv.batch([{ type: "put", key: K.authSnapshot(docId, meta.seq), value: encodeCanonical([meta.hash, meta.size, meta.chunks, meta.lastTime]) }], { sync: this.sync })
  }

  /** Complete snapshots of a document, newest first. */
  async metas(docId: string): Promise<SnapshotMeta[]> {
    const prefix = K.authSnapshotPrefix(docId)
    const out: SnapshotMeta[] = []
    for (const [key, value] of await this.kv.range({ gte: prefix, lt: K.prefixEnd(prefix), reverse: true })) {
      if (key.length !== prefix.length + 8) continue
      const seq = K.seqFromKey(key)
      out.push(decodeRecord(value, `snapshot ${seq}`, docId, key, checkMeta(seq)))
    }
    return out
  }

  /** Chunk i of the snapshot at seq; a missing chunk is `storage-corrupt`. */
  async chunk(docId: string, seq: number, i: number): Promise<Uint8Array> {
    const v = await this.kv.get(K.authChunk(docId, seq, i))
    if (v === undefined) throw canonError("storage-corrupt", `Chunk ${i} of the snapshot of "${docId}" at seq ${seq} is missing.`)
    return v
  }

  /** Deletes a snapshot: its meta first (so it is never read again), then its chunks. */
  async drop(docId: string, seq: number): Promise<void> {
    await this.kv.batch([{ type: "del", key: K.authSnapshot(docId, seq) }])
    await this.dropChunks(docId, seq)
  }

  /** Deletes the chunks of the snapshot at seq from index `from` on. */
  private async dropChunks(docId: string, seq: number, from = 0): Promise<void> {
    const prefix = K.authChunksOf(docId, seq)
    const gte = from === 0 ? prefix : K.authChunk(docId, seq, from)
    for (;;) {
      const rows = await this.kv.range({ gte, lt: K.prefixEnd(prefix), limit: 64 })
      if (rows.length === 0) return
      await this.kv.batch(rows.map(([key]) => ({ type: "del" as const, key })))
    }
  }

  /**
   * Deletes chunks that belong to no complete snapshot (a write cut by a crash), and those past
   * a complete snapshot's own (a cut write at the same seq, in more chunks of another size,
   * that the complete one did not overwrite). Returns how many seqs it tidied.
   */
  async dropOrphans(docId: string): Promise<number> {
    const complete = new Map((await this.metas(docId)).map((m) => [m.seq, m.chunks]))
    const prefix = K.authChunkPrefix(docId)
    let from = prefix
    let dropped = 0
    for (;;) {
      const [row] = await this.kv.range({ gte: from, lt: K.prefixEnd(prefix), limit: 1 })
      if (row === undefined) return dropped
      const seq = K.seqFromKey(row[0].subarray(0, prefix.length + 8))
      const chunks = complete.get(seq)
      const past = chunks === undefined ? [] : await this.kv.range({ gte: K.authChunk(docId, seq, chunks), lt: K.prefixEnd(K.authChunksOf(docId, seq)), limit: 1 })
      if (chunks === undefined || past.length > 0) {
        await this.dropChunks(docId, seq, chunks ?? 0)
        dropped++
      }
      from = K.prefixEnd(K.authChunksOf(docId, seq))
    }
  }

  /** Entries at or below this seq may be gone (0: the log is whole). */
  async horizon(docId: string): Promise<number> {
    return (await this.horizonRecord(docId)).horizon
  }

  /** Entries at or below this seq are deleted (a compaction in progress or cut short has not reached its horizon yet). */
  async deletedThrough(docId: string): Promise<number> {
    return (await this.horizonRecord(docId)).done
  }

  /**
   * The stored horizon and how far its deletes are done. The record is `[horizon, done]`:
   * entries at or below `done` are deleted, those in (done, horizon] may still be there (a
   * compaction cut short). A bare number is a store from before the record said so: its
   * deletes are not known done, so they are swept once from the start of the log.
   */
  private async horizonRecord(docId: string): Promise<{ horizon: number; done: number }> {
    const key = K.authHorizon(docId)
    const raw = await this.kv.get(key)
    return raw === undefined ? { horizon: 0, done: 0 } : decodeHorizon(raw, docId)
  }

  private putHorizon(docId: string, horizon: number, done: number, sync: boolean): Promise<void> {
    return this.kv.batch([{ type: "put", key: K.authHorizon(docId), value: encodeCanonical([horizon, done]) }], { sync })
  }

  /** One compaction at a time per document: each one's record must describe its own deletes. */
  private readonly compacting = new Map<string, Promise<unknown>>()

  /**
   * Moves the horizon to `upTo` (never back) and deletes the entries from where the last
   * compaction stopped up to it, a page per batch, each page starting after the previous one:
   * the cost is the entries deleted, not the history. (Starting each time at the log's first
   * key walked the store's record of every entry deleted before: LevelDB iterates over its
   * deletion markers, so compaction grew with the history; bench snapshots, row 1d.)
   * The checkpoints below the horizon go too, from where the previous compaction stopped; with
   * `sweep` from the first one (a load's tidy-up, the CLI: a store written before compaction
   * deleted checkpoints keeps every one below its horizon, and a compaction cut by a crash may
   * leave some). Returns the number of entries deleted.
   */
  compact(docId: string, upTo: number, onProgress?: (deleted: number) => void, onRecorded?: (horizon: number) => void, sweep = false): Promise<number> {
    const previous = this.compacting.get(docId) ?? Promise.resolve()
    const run = previous.catch(() => {}).then(() => this.compactNow(docId, upTo, onProgress, onRecorded, sweep))
    this.compacting.set(docId, run)
    const clear = () => { if (this.compacting.get(docId) === run) this.compacting.delete(docId) }
    run.then(clear, clear)
    return run
  }

  private async compactNow(docId: string, upTo: number, onProgress: ((deleted: number) => void) | undefined, onRecorded: ((horizon: number) => void) | undefined, sweep: boolean): Promise<number> {
    const stored = await this.horizonRecord(docId)
    const horizon = Math.max(upTo, stored.horizon)
    onRecorded?.(stored.horizon)
    if (stored.done >= horizon) {
      if (sweep && horizon > 0) await this.dropCheckpoints(docId, 0, horizon)
      return 0
    }
    // Durable before any delete: a crash in between leaves entries the next compaction (or
    // the next load's tidy-up) deletes, from `done`.
    if (horizon !== stored.horizon) await this.putHorizon(docId, horizon, stored.done, this.sync)
    onRecorded?.(horizon)
    const from = stored.done > 0 ? K.authEntry(docId, stored.done + 1) : K.authEntryPrefix(docId)
    const deleted = await this.deletePaged(from, K.authEntry(docId, horizon + 1), (seq) => K.authEntry(docId, seq), onProgress)
    // Before the record says the deletes are done: a crash before it, and the next compaction
    // deletes from `done` again.
    await this.dropCheckpoints(docId, sweep ? 0 : stored.done, horizon)
    // Not synced: if lost, the next compaction deletes the same range again (finding nothing).
    await this.putHorizon(docId, horizon, horizon, false)
    return deleted
  }

  /** Deletes the checkpoints at seqs in [from, below), a page per batch. */
  private async dropCheckpoints(docId: string, from: number, below: number): Promise<void> {
    const start = from > 0 ? K.authCheckpoint(docId, from) : K.authCheckpointPrefix(docId)
    await this.deletePaged(start, K.authCheckpoint(docId, below), (seq) => K.authCheckpoint(docId, seq))
  }

  /**
   * Deletes the keys in [start, end), a page per batch, each page starting after the last key
   * of the one before (`keyAt` makes the key of a seq): never from the first key again.
   * `onProgress` hears the count so far after each page. Returns the keys deleted.
   */
  private async deletePaged(start: Uint8Array, end: Uint8Array, keyAt: (seq: number) => Uint8Array, onProgress?: (deleted: number) => void): Promise<number> {
    let from = start
    let deleted = 0
    for (;;) {
      const rows = await this.kv.range({ gte: from, lt: end, limit: DELETE_PAGE })
      if (rows.length === 0) return deleted
      await this.kv.batch(rows.map(([key]): BatchOp => ({ type: "del", key })))
      deleted += rows.length
      onProgress?.(deleted)
      if (rows.length < DELETE_PAGE) return deleted
      from = keyAt(K.seqFromKey(rows[rows.length - 1]![0]) + 1)
    }
  }
}

/** The canonical value of `bytes`, read through the strict decoder (a snapshot is untrusted input too). */
export const decodeSnapshotBytes = (bytes: Uint8Array): unknown => decodeCanonical(bytes)

/** A stored compaction horizon record: a bare number (older stores) or [horizon, done]. */
export const decodeHorizon = (raw: Uint8Array, docId: string): { horizon: number; done: number } =>
  decodeRecord(raw, "compaction horizon", docId, K.authHorizon(docId), (v) => {
    if (isNum(v) && v >= 0) return { horizon: v, done: 0 }
    if (Array.isArray(v) && v.length === 2 && isNum(v[0]) && isNum(v[1]) && v[1] >= 0 && v[1] <= v[0]) return { horizon: v[0], done: v[1] }
    throw new Error("not a horizon")
  })
