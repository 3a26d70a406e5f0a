/**
 * What the authority keeps per document, over a KVStore: the log, the head, and the
 * idempotency records. `commit` writes new entries, the head and changed client records in
 * one atomic batch: a command is acknowledged only after that batch is durable.
 */
import type { Checkpoint, Entry } from "../entry.js"
import { encodeCanonical, writeValue } from "../canonical.js"
import type { BatchOp, KVStore } from "../ports/storage.js"
import { ByteReader, ByteWriter, hexOf } from "../bytes.js"
import { canonError } from "../errors.js"
import * as K from "./keys.js"
import {
  type AuthorityHead, type ClientMark, type Identity, type LegacyClientRecord, type OutcomeRun, checkHead, checkIdentity, checkLegacyClient,
  checkMark, decodeRecord, encodeIdentity, entryChecker, runChecker, writeEntry, writeHead, writeMark, writeRun,
} from "./records.js"
import { ensureFormat } from "./migrations.js"
import { gatedKV } from "./gated-kv.js"
import type { MigrationEvent } from "./migration.js"
import { SnapshotStore } from "./snapshot-store.js"

export interface CommitBatch {
  readonly head: AuthorityHead
  /** Checkpoints reached in this batch, kept so the log can be verified later. */
  readonly checkpoints?: ReadonlyArray<Checkpoint>
  readonly entries: ReadonlyArray<Entry>
  /** Changed client marks. */
  readonly marks?: ReadonlyArray<readonly [string, ClientMark]>
  /** New outcome runs. */
  readonly runs?: ReadonlyArray<readonly [string, OutcomeRun]>
  /** Outcome runs to forget (acknowledged or out of the window), by clientId and first clientSeq. */
  readonly dropRuns?: ReadonlyArray<readonly [string, number]>
  /** Format-1 client records converted in this batch. */
  readonly dropLegacy?: ReadonlyArray<string>
}

export interface AuthorityStoreOptions {
  readonly sync?: boolean
  /**
   * Opened for reading only (canon inspect): an older storage format is read as it is when
   * this build can, never migrated; see core/store/migration.ts.
   */
  readonly readOnly?: boolean
  /** Progress of a storage-format migration run by `open` (a hub can log it). */
  readonly onMigration?: (event: MigrationEvent) => void
}

export class AuthorityStore {
  private ready: Promise<void> | undefined
  private opened = false

  /** Snapshots and compaction of the same documents (their reads wait for `open` too). */
  readonly snapshots: SnapshotStore

  constructor(readonly kv: KVStore, readonly options: AuthorityStoreOptions = {}) {
    this.snapshots = new SnapshotStore(gatedKV(kv, () => this.open(), () => this.opened), options.sync ?? false)
  }

  /**
   * Where compaction behind a snapshot at `snapshotSeq` may go: the highest seq such that
   * the entries after it, up to the snapshot, take at least `tailBytes`.
   */
  async horizonFor(docId: string, snapshotSeq: number, tailBytes: number): Promise<number> {
    await this.open()
    const prefix = K.authEntryPrefix(docId)
    let bytes = 0
    let seq = snapshotSeq
    for (;;) {
      const rows = await this.kv.range({ gte: prefix, lt: K.authEntry(docId, seq + 1), reverse: true, limit: 256 })
      if (rows.length === 0) return 0
      for (const [key, value] of rows) {
        seq = K.seqFromKey(key)
        bytes += key.length + value.length
        if (bytes >= tailBytes) return seq - 1
      }
      seq -= 1
      if (rows.length < 256) return 0
    }
  }

  /**
   * Checks the storage format once, before the first read or write, and migrates a store of
   * an older format (core/store/format.ts): nothing reads the data before that is done. A
   * failed check is not kept: the next call tries again (a migration resumes where it
   * stopped), or one transient error would fail every later load of a running hub.
   */
  open(): Promise<void> {
    return (this.ready ??= ensureFormat(this.kv, this.options).then(
      () => {
        this.opened = true
      },
      (e: unknown) => {
        this.ready = undefined
        throw e
      },
    ))
  }

  async head(docId: string): Promise<AuthorityHead | undefined> {
    await this.open()
    const key = K.authHead(docId)
    const raw = await this.kv.get(key)
    return raw === undefined ? undefined : decodeRecord(raw, "head", docId, key, checkHead)
  }

  /** A client's high-water mark on a document, if it ever submitted there. */
  async mark(docId: string, clientId: string): Promise<ClientMark | undefined> {
    await this.open()
    const key = K.authMark(docId, clientId)
    const raw = await this.kv.get(key)
    return raw === undefined ? undefined : decodeRecord(raw, "client mark", docId, key, checkMark)
  }

  /**
   * A format-1 idempotency record. A store opened for writing holds none (the migration to
   * format 2 converted them all); only a read-only open of a format-1 store can find one.
   */
  async legacyClient(docId: string, clientId: string): Promise<LegacyClientRecord | undefined> {
    await this.open()
    const key = K.authClient(docId, clientId)
    const raw = await this.kv.get(key)
    return raw === undefined ? undefined : decodeRecord(raw, "client record", docId, key, checkLegacyClient)
  }

  /** The stored outcome runs of a client on a document, in clientSeq order. */
  async runs(docId: string, clientId: string): Promise<OutcomeRun[]> {
    await this.open()
    const prefix = K.authOutcomePrefix(docId, clientId)
    const out: OutcomeRun[] = []
    for (const [key, value] of await this.kv.range({ gte: prefix, lt: K.prefixEnd(prefix) })) {
      if (key.length !== prefix.length + 8) continue
      const first = K.seqFromKey(key)
      out.push(decodeRecord(value, `outcome run ${first}`, docId, key, runChecker(first)))
    }
    return out
  }

  /** Who owns a clientId, hub-wide. */
  async identity(clientId: string): Promise<Identity | undefined> {
    await this.open()
    const key = K.identity(clientId)
    const raw = await this.kv.get(key)
    return raw === undefined ? undefined : decodeRecord(raw, "client identity", "-", key, checkIdentity)
  }

  /** Stores a clientId's owner; durable (fsync) before it resolves, whatever the hub's sync setting. */
  async putIdentity(clientId: string, identity: Identity): Promise<void> {
    await this.open()
    await this.kv.batch([{ type: "put", key: K.identity(clientId), value: encodeIdentity(identity) }], { sync: this.options.sync ?? false })
  }

  /**
   * Stored bytes (keys and values, as `entries` counts them) of the entries with seq in
   * (afterSeq, throughSeq], read in pages and no further than past `atMost` (then more than it).
   */
  async logBytes(docId: string, afterSeq: number, throughSeq: number, atMost: number): Promise<number> {
    await this.open()
    let bytes = 0
    let from = afterSeq + 1
    while (from <= throughSeq && bytes <= atMost) {
      const rows = await this.kv.range({ gte: K.authEntry(docId, from), lt: K.authEntry(docId, throughSeq + 1), limit: 256 })
      for (const [key, value] of rows) bytes += key.length + value.length
      if (rows.length < 256) break
      from = K.seqFromKey(rows[rows.length - 1]![0]) + 1
    }
    return bytes
  }

  /** Entries with seq in (afterSeq, afterSeq + limit], in order; `sizes.bytes` grows by their stored bytes (keys and values). */
  async entries(docId: string, afterSeq: number, limit: number, sizes?: { bytes: number }): Promise<Entry[]> {
    await this.open()
    const prefix = K.authEntryPrefix(docId)
    const rows = await this.kv.range({ gte: K.authEntry(docId, afterSeq + 1), lt: K.prefixEnd(prefix), limit })
    const out: Entry[] = []
    let expect = afterSeq + 1
    const keyLength = K.entryKeyLength(prefix)
    for (const [key, value] of rows) {
      if (key.length !== keyLength) {
        throw canonError("storage-corrupt", `The log of document "${docId}" holds a key that is not an entry (${hexOf(key)}).`)
      }
      const seq = K.seqFromKey(key)
      const entry = decodeRecord(value, `entry ${seq}`, docId, key, entryChecker(seq))
      if (seq !== expect) {
        throw canonError("storage-corrupt", `The log of document "${docId}" has a hole: entry ${expect} is missing (found ${seq}).`)
      }
      expect++
      if (sizes !== undefined) sizes.bytes += key.length + value.length
      out.push(entry)
    }
    return out
  }

  /** Stores a checkpoint published outside a commit (when the document went quiet). */
  async putCheckpoint(docId: string, cp: Checkpoint): Promise<void> {
    if (!this.opened) await this.open()
    await this.kv.batch([{ type: "put", key: K.authCheckpoint(docId, cp.seq), value: encodeCanonical(cp.hash) }])
  }

  /** Every stored checkpoint of a document (or the `last` ones), in seq order. */
  async checkpoints(docId: string, last?: number): Promise<Checkpoint[]> {
    await this.open()
    const prefix = K.authCheckpointPrefix(docId)
    const out: Checkpoint[] = []
    const rows = await this.kv.range({ gte: prefix, lt: K.prefixEnd(prefix), ...(last !== undefined ? { reverse: true, limit: last } : {}) })
    if (last !== undefined) rows.reverse()
    for (const [key, value] of rows) {
      const seq = K.seqFromKey(key)
      const hash = decodeRecord(value, `checkpoint ${seq}`, docId, key, (v) => {
        if (typeof v !== "string") throw new Error("not a hash")
        return v
      })
      out.push({ seq, hash })
    }
    return out
  }

  /** Every document's head, for listings. */
  /**
   * Every document's head, in key order. A record that does not decode (a damaged disk) is
   * listed with its problem instead of thrown: one damaged head must not hide the others
   * from the tools that look for damage (canon inspect, canon compact).
   */
  async heads(): Promise<Array<StoredHead>> {
    await this.open()
    const out: StoredHead[] = []
    for (const [key, value] of await this.kv.range({ gte: K.authHeadPrefix, lt: K.prefixEnd(K.authHeadPrefix) })) {
      let docId: string | undefined
      try {
        const r = new ByteReader(key.subarray(K.authHeadPrefix.length))
        docId = r.string()
        if (r.remaining !== 0) throw new Error("bytes after the document id")
        out.push({ docId, head: decodeRecord(value, "head", docId, key, checkHead) })
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e)
        out.push({ docId, problem: docId === undefined ? `A head record's key (${hexOf(key)}) holds no document id: ${why}` : why })
      }
    }
    return out
  }

  /** Bytes the document's records take (keys and values), for listings. */
  async sizeOf(docId: string): Promise<{ readonly bytes: number; readonly entries: number }> {
    await this.open()
    let bytes = 0
    let entries = 0
    for (const prefix of [K.authEntryPrefix(docId), K.authClientPrefix(docId), K.authMarkPrefix(docId), K.authOutcomeDocPrefix(docId), K.authCheckpointPrefix(docId)]) {
      for (const [k, v] of await this.kv.range({ gte: prefix, lt: K.prefixEnd(prefix) })) {
        bytes += k.length + v.length
        if (prefix[1] === 0x65) entries++
      }
    }
    return { bytes, entries }
  }

  /**
   * One atomic batch. All keys and values are written into one buffer owned by this batch
   * (views into it go to the store): no per-record allocation on the hottest write path.
   */
  /** Resolves with the bytes of entries written (for the snapshot policy). */
  async commit(docId: string, batch: CommitBatch): Promise<number> {
    if (!this.opened) await this.open()
    const w = new ByteWriter(256 + batch.entries.length * 64)
    const spans: number[] = []
    const span = (writeKey: () => void, writeVal: () => void) => {
      spans.push(w.pos)
      writeKey()
      spans.push(w.pos)
      writeVal()
      spans.push(w.pos)
    }
    for (const e of batch.entries) span(() => K.writeAuthEntryKey(w, docId, e.seq), () => writeEntry(w, e))
    const entryBytes = w.pos
    for (const [clientId, run] of batch.runs ?? []) span(() => K.writeAuthOutcomeKey(w, docId, clientId, run.first), () => writeRun(w, run))
    for (const [clientId, mark] of batch.marks ?? []) span(() => K.writeAuthMarkKey(w, docId, clientId), () => writeMark(w, mark))
    for (const cp of batch.checkpoints ?? []) span(() => K.writeAuthCheckpointKey(w, docId, cp.seq), () => writeValue(w, cp.hash))
    span(() => K.writeAuthHeadKey(w, docId), () => writeHead(w, batch.head))
    const buf = w.view_()
    const ops: BatchOp[] = []
    for (let i = 0; i < spans.length; i += 3) {
      ops.push({ type: "put", key: buf.subarray(spans[i]!, spans[i + 1]!), value: buf.subarray(spans[i + 1]!, spans[i + 2]!) })
    }
    for (const [clientId, first] of batch.dropRuns ?? []) ops.push({ type: "del", key: K.authOutcome(docId, clientId, first) })
    for (const clientId of batch.dropLegacy ?? []) ops.push({ type: "del", key: K.authClient(docId, clientId) })
    await this.kv.batch(ops, { sync: this.options.sync ?? false })
    return entryBytes
  }
}

/** A document's head as `heads()` lists it: read, or the problem that kept it from being read (docId undefined: its key is damaged too). */
export type StoredHead = { readonly docId: string; readonly head: AuthorityHead; readonly problem?: undefined } | { readonly docId: string | undefined; readonly head?: undefined; readonly problem: string }
