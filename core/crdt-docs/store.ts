/**
 * Storage of whole CRDT documents on the KVStore port (keys: core/store/keys.ts, "c" space).
 *
 * A document is a meta record (kind, last seq, base seq), an optional base (the engine's
 * compact state at the base seq) and the updates accepted after it, one entry per seq.
 * Appending writes the entries and the meta in one atomic batch; compaction writes the new
 * base and meta and deletes the entries it covers in one atomic batch too, so a crash leaves
 * either the old base plus its tail or the new base plus a shorter one, never a gap.
 *
 * Writer ownership (which principal first wrote as a Yjs clientID or an Automerge actor, see
 * CrdtDocAuthority) is one record per writer, written in the batch of the update that bound
 * it; compaction leaves it alone. A store from before ownership has none: writers bind anew.
 */
import { ByteReader, ByteWriter } from "../bytes.js"
import { canonError } from "../errors.js"
import type { BatchOp, KVStore } from "../ports/storage.js"
import { crdtBase, crdtEntry, crdtEntryPrefix, crdtMeta, crdtOwner, crdtOwnerPrefix, prefixEnd, seqFromKey } from "../store/keys.js"

export interface CrdtMeta {
  readonly kind: string
  /** Seq of the last accepted update. */
  readonly seq: number
  /** Updates up to this seq are in the base (0: no base). */
  readonly baseSeq: number
}

export interface StoredCrdtDoc {
  readonly meta: CrdtMeta
  readonly base: Uint8Array | undefined
  /** Updates after the base, in seq order. */
  readonly entries: ReadonlyArray<{ readonly seq: number; readonly update: Uint8Array }>
  /** Writer identity -> the id of the principal that owns it. */
  readonly owners: Map<string, string>
}

/** A writer identity bound to a principal id (core/crdt-docs/authority.ts). */
export type OwnerRecord = readonly [writer: string, principal: string]

const encodeOwner = ([writer, principal]: OwnerRecord): Uint8Array => {
  const w = new ByteWriter(16 + writer.length + principal.length)
  w.string(writer)
  w.string(principal)
  return w.finish()
}

const META_VERSION = 1

const encodeMeta = (m: CrdtMeta): Uint8Array => {
  const w = new ByteWriter(32)
  w.varint(META_VERSION)
  w.string(m.kind)
  w.varint(m.seq)
  w.varint(m.baseSeq)
  return w.finish()
}

const decodeMeta = (bytes: Uint8Array, docId: string): CrdtMeta => {
  try {
    const r = new ByteReader(bytes)
    const version = r.varint()
    if (version !== META_VERSION) throw canonError("storage-too-new", `CRDT document "${docId}" was stored in format ${version}; this build reads ${META_VERSION}. Upgrade Canon.`)
    return { kind: r.string(), seq: r.varint(), baseSeq: r.varint() }
  } catch (e) {
    if ((e as { code?: string }).code === "storage-too-new") throw e
    throw canonError("storage-corrupt", `The meta record of CRDT document "${docId}" does not decode: ${e instanceof Error ? e.message : String(e)}`)
  }
}

export class CrdtDocStore {
  constructor(private readonly kv: KVStore, private readonly options: { readonly sync?: boolean } = {}) {}

  /** The stored document, or undefined when it was never written. */
  async load(docId: string): Promise<StoredCrdtDoc | undefined> {
    const metaBytes = await this.kv.get(crdtMeta(docId))
    if (metaBytes === undefined) return undefined
    const meta = decodeMeta(metaBytes, docId)
    const base = meta.baseSeq > 0 ? await this.kv.get(crdtBase(docId)) : undefined
    if (meta.baseSeq > 0 && base === undefined) throw canonError("storage-corrupt", `CRDT document "${docId}" has lost its base state (seq ${meta.baseSeq}).`)
    const prefix = crdtEntryPrefix(docId)
    const rows = await this.kv.range({ gte: crdtEntry(docId, meta.baseSeq + 1), lt: prefixEnd(prefix) })
    const entries = rows.map(([k, v]) => ({ seq: seqFromKey(k), update: v }))
    // Entries are written with their meta in one batch: a gap or an excess is corruption.
    let expected = meta.baseSeq + 1
    for (const e of entries) {
      if (e.seq !== expected) throw canonError("storage-corrupt", `CRDT document "${docId}" misses update ${expected} (found ${e.seq}).`)
      expected++
    }
    if (expected - 1 < meta.seq) throw canonError("storage-corrupt", `CRDT document "${docId}" ends at update ${expected - 1}; its meta says ${meta.seq}.`)
    const owners = new Map<string, string>()
    const ownerPrefix = crdtOwnerPrefix(docId)
    for (const [, v] of await this.kv.range({ gte: ownerPrefix, lt: prefixEnd(ownerPrefix) })) {
      try {
        const r = new ByteReader(v)
        owners.set(r.string(), r.string())
      } catch (e) {
        throw canonError("storage-corrupt", `A writer record of CRDT document "${docId}" does not decode: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
    return { meta, base, entries: entries.filter((e) => e.seq <= meta.seq), owners }
  }

  /** Writes updates `from`, `from + 1`, ..., the writers they bound and the new meta, atomically. */
  async append(docId: string, meta: CrdtMeta, from: number, updates: ReadonlyArray<Uint8Array>, owners: ReadonlyArray<OwnerRecord> = []): Promise<void> {
    const ops: BatchOp[] = updates.map((u, i) => ({ type: "put", key: crdtEntry(docId, from + i), value: u }))
    for (const o of owners) ops.push({ type: "put", key: crdtOwner(docId, o[0]), value: encodeOwner(o) })
    ops.push({ type: "put", key: crdtMeta(docId), value: encodeMeta(meta) })
    await this.kv.batch(ops, this.options.sync === undefined ? undefined : { sync: this.options.sync })
  }

  /**
   * Replaces the base by `base` (the state at `meta.baseSeq`) and deletes the entries it now
   * covers (those after `oldBaseSeq`), atomically.
   */
  async compact(docId: string, meta: CrdtMeta, oldBaseSeq: number, base: Uint8Array): Promise<void> {
    const ops: BatchOp[] = [
      { type: "put", key: crdtBase(docId), value: base },
      { type: "put", key: crdtMeta(docId), value: encodeMeta(meta) },
    ]
    for (let s = oldBaseSeq + 1; s <= meta.baseSeq; s++) ops.push({ type: "del", key: crdtEntry(docId, s) })
    await this.kv.batch(ops, this.options.sync === undefined ? undefined : { sync: this.options.sync })
  }
}
