/**
 * What the authority keeps per document, over a KVStore: the log, the head, and the
 * idempotency records. `commit` writes new entries, the head and changed client records in
 * one atomic batch: a command is acknowledged only after that batch is durable.
 */
import type { Entry } from "../entry.js"
import type { KVStore } from "../ports/storage.js"
import { ByteReader } from "../bytes.js"
import { canonError } from "../errors.js"
import * as K from "./keys.js"
import {
  type AuthorityHead, type ClientRecord, checkClient, checkHead, decodeRecord, encodeClient, encodeEntry, encodeHead, entryChecker,
} from "./records.js"
import { ensureFormat } from "./format.js"

export interface CommitBatch {
  readonly head: AuthorityHead
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
    const rows = await this.kv.range({
      gte: K.authEntry(docId, afterSeq + 1),
      lt: K.prefixEnd(K.authEntryPrefix(docId)),
      limit,
    })
    const out: Entry[] = []
    let expect = afterSeq + 1
    for (const [key, value] of rows) {
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

  async commit(docId: string, batch: CommitBatch): Promise<void> {
    const ops: { type: "put"; key: Uint8Array; value: Uint8Array }[] = []
    for (const e of batch.entries) ops.push({ type: "put", key: K.authEntry(docId, e.seq), value: encodeEntry(e) })
    for (const [clientId, rec] of batch.clients) ops.push({ type: "put", key: K.authClient(docId, clientId), value: encodeClient(rec) })
    ops.push({ type: "put", key: K.authHead(docId), value: encodeHead(batch.head) })
    await this.kv.batch(ops, { sync: this.options.sync ?? false })
  }
}
