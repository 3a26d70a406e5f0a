/**
 * What the authority keeps per document, over a KVStore: the log, the head, and the
 * idempotency records. `commit` writes new entries, the head and changed client records in
 * one atomic batch: a command is acknowledged only after that batch is durable.
 */
import type { Checkpoint, Entry } from "../entry.js"
import { encodeCanonical, writeValue } from "../canonical.js"
import type { BatchOp, KVStore } from "../ports/storage.js"
import { ByteReader, ByteWriter } from "../bytes.js"
import { canonError } from "../errors.js"
import * as K from "./keys.js"
import {
  type AuthorityHead, type ClientRecord, checkClient, checkHead, decodeRecord, entryChecker, writeClient, writeEntry, writeHead,
} from "./records.js"
import { ensureFormat } from "./format.js"

export interface CommitBatch {
  readonly head: AuthorityHead
  /** A checkpoint reached in this batch, kept so the log can be verified later. */
  readonly checkpoint?: Checkpoint
  readonly entries: ReadonlyArray<Entry>
  readonly clients: ReadonlyArray<readonly [string, ClientRecord]>
}

export class AuthorityStore {
  private ready: Promise<void> | undefined

  constructor(readonly kv: KVStore, readonly options: { readonly sync?: boolean } = {}) {}

  /** Checks the storage format once, before the first read. */
  open(): Promise<void> {
    return (this.ready ??= ensureFormat(this.kv))
  }

  async head(docId: string): Promise<AuthorityHead | undefined> {
    await this.open()
    const key = K.authHead(docId)
    const raw = await this.kv.get(key)
    return raw === undefined ? undefined : decodeRecord(raw, "head", docId, key, checkHead)
  }

  async clients(docId: string): Promise<Map<string, ClientRecord>> {
    await this.open()
    const prefix = K.authClientPrefix(docId)
    const rows = await this.kv.range({ gte: prefix, lt: K.prefixEnd(prefix) })
    const out = new Map<string, ClientRecord>()
    for (const [key, value] of rows) {
      const rec = decodeRecord(value, "client record", docId, key, checkClient)
      // The key ends with the length-prefixed clientId.
      const reader = new ByteReader(key.subarray(prefix.length))
      const id = reader.string()
      out.set(id, rec)
    }
    return out
  }

  /** Entries with seq in (afterSeq, afterSeq + limit], in order. */
  async entries(docId: string, afterSeq: number, limit: number): Promise<Entry[]> {
    await this.open()
    const prefix = K.authEntryPrefix(docId)
    const rows = await this.kv.range({ gte: K.authEntry(docId, afterSeq + 1), lt: K.prefixEnd(prefix), limit })
    const out: Entry[] = []
    let expect = afterSeq + 1
    const keyLength = K.entryKeyLength(prefix)
    for (const [key, value] of rows) {
      if (key.length !== keyLength) {
        throw canonError("storage-corrupt", `The log of document "${docId}" holds a key that is not an entry (${Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("")}).`)
      }
      const seq = K.seqFromKey(key)
      const entry = decodeRecord(value, `entry ${seq}`, docId, key, entryChecker(seq))
      if (seq !== expect) {
        throw canonError("storage-corrupt", `The log of document "${docId}" has a hole: entry ${expect} is missing (found ${seq}).`)
      }
      expect++
      out.push(entry)
    }
    return out
  }

  /** Stores a checkpoint published outside a commit (when the document went quiet). */
  async putCheckpoint(docId: string, cp: Checkpoint): Promise<void> {
    await this.kv.batch([{ type: "put", key: K.authCheckpoint(docId, cp.seq), value: encodeCanonical(cp.hash) }])
  }

  /** Every stored checkpoint of a document, in seq order. */
  async checkpoints(docId: string): Promise<Checkpoint[]> {
    await this.open()
    const prefix = K.authCheckpointPrefix(docId)
    const out: Checkpoint[] = []
    for (const [key, value] of await this.kv.range({ gte: prefix, lt: K.prefixEnd(prefix) })) {
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
  async heads(): Promise<Array<{ readonly docId: string; readonly head: AuthorityHead }>> {
    await this.open()
    const out: Array<{ docId: string; head: AuthorityHead }> = []
    for (const [key, value] of await this.kv.range({ gte: K.authHeadPrefix, lt: K.prefixEnd(K.authHeadPrefix) })) {
      const docId = new ByteReader(key.subarray(K.authHeadPrefix.length)).string()
      out.push({ docId, head: decodeRecord(value, "head", docId, key, checkHead) })
    }
    return out
  }

  /** Bytes the document's records take (keys and values), for listings. */
  async sizeOf(docId: string): Promise<{ readonly bytes: number; readonly entries: number }> {
    let bytes = 0
    let entries = 0
    for (const prefix of [K.authEntryPrefix(docId), K.authClientPrefix(docId), K.authCheckpointPrefix(docId)]) {
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
  async commit(docId: string, batch: CommitBatch): Promise<void> {
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
    for (const [clientId, rec] of batch.clients) span(() => K.writeAuthClientKey(w, docId, clientId), () => writeClient(w, rec))
    const cp = batch.checkpoint
    if (cp !== undefined) span(() => K.writeAuthCheckpointKey(w, docId, cp.seq), () => writeValue(w, cp.hash))
    span(() => K.writeAuthHeadKey(w, docId), () => writeHead(w, batch.head))
    const buf = w.view_()
    const ops: BatchOp[] = []
    for (let i = 0; i < spans.length; i += 3) {
      ops.push({ type: "put", key: buf.subarray(spans[i]!, spans[i + 1]!), value: buf.subarray(spans[i + 1]!, spans[i + 2]!) })
    }
    await this.kv.batch(ops, { sync: this.options.sync ?? false })
  }
}
