/**
 * What a replica keeps, over a KVStore: its clientId and, per document, the confirmed state
 * (a snapshot plus the confirmed entries since), the confirmed seq, and the outbox of
 * commands not yet confirmed or rejected with the next clientSeq.
 *
 * The outbox write of a command (with the bumped clientSeq) is one batch and happens before
 * the command is sent. Confirmations append entries, drop settled outbox records and advance
 * the meta in one batch; every `snapshotEvery` entries the state is written whole and the
 * entry tail dropped, so opening replays a bounded tail.
 *
 * A CRDT change the hub refused only for needing a refused one waits in the queue records
 * until it goes again: the write that takes the refused commands out of the outbox stores
 * what replaces them (the commands sent again, the changes that wait), and the outbox write
 * of a waiting change takes its queue record out, so no crash loses one (core/crdt/replica.ts).
 */
import type { Entry } from "../entry.js"
import { REPLICA_STORE, type BatchOp, type KVStore, type ReplicaStorage } from "../ports/storage.js"
import * as K from "./keys.js"
import {
  type ReplicaMeta, checkOutbox, checkReplicaMeta, checkSnapshot, decodeRecord, encodeEntry, encodeOutbox, encodeReplicaMeta,
  encodeSnapshot, entryChecker,
} from "./records.js"
import { ensureReplicaFormat } from "./format.js"
import { encodeCanonical } from "../canonical.js"
import { canonError } from "../errors.js"
import type { LaneHost, QueuedChange } from "../replica/doc-lane.js"
import { StoredLane, type StoredLaneInit } from "./stored-lane.js"
import type { Machine } from "../machine.js"
import type { DocInit } from "../replica/doc.js"
import { openStoredDoc } from "./replica-open.js"
import { newClientIdentity, newClientSecret, type Runtime } from "../ports/runtime.js"

/** Storages a client of this page is closing on, until it has let go (see `ReplicaStore.hold`). */
const closingStores = new WeakMap<ReplicaStorage, Promise<void>>()

export interface StoredReplicaDoc {
  readonly meta: ReplicaMeta
  readonly snapshot: { readonly seq: number; readonly state: Uint8Array } | undefined
  /** Confirmed entries after the snapshot, in seq order. */
  readonly entries: ReadonlyArray<Entry>
  /** Outbox in clientSeq order. */
  readonly outbox: ReadonlyArray<{ readonly clientSeq: number; readonly name: string; readonly args: unknown; readonly madeAs?: number }>
  /** The stored state was migrated locally (an app upgrade) and the authority's has not arrived yet. */
  readonly provisional: boolean
  /** CRDT changes waiting to go again, in the order they wait. */
  readonly queued: ReadonlyArray<QueuedChange>
}

/** An outbox record; `dequeued`: the queue record of the waiting change it sends, taken out with it. */
export interface OutboxRecord {
  readonly clientSeq: number
  readonly name: string
  readonly args: unknown
  readonly dequeued?: number
  /** Renumbered by the hub: the number it was made under (sent with it, see CommandRequest). */
  readonly madeAs?: number
}

export interface ConfirmBatch {
  readonly meta: ReplicaMeta
  readonly entries: ReadonlyArray<Entry>
  readonly settled: ReadonlyArray<number>
  /** When set: the confirmed state at `seq`, replacing the stored entries dropFrom..dropTo. */
  readonly snapshot?: { readonly seq: number; readonly state: Uint8Array; readonly dropFrom: number; readonly dropTo: number }
  /**
   * The snapshot is a state migrated here, not the authority's: the next open asks for the
   * authority's state until a snapshot without this flag (an install) replaces it.
   */
  readonly provisional?: boolean
  /** Outbox records stored in the same batch: new commands, and what a refusal sends again (every outbox write is a ConfirmBatch, so it carries what a failed write left). */
  readonly outbox?: ReadonlyArray<OutboxRecord>
  /** CRDT changes that start waiting to go again. */
  readonly queued?: ReadonlyArray<QueuedChange>
}

const outboxOps = (docId: string, ops: BatchOp[], commands: ReadonlyArray<OutboxRecord>): void => {
  for (const c of commands) {
    ops.push({ type: "put", key: K.replicaOutbox(docId, c.clientSeq), value: encodeOutbox(c.name, c.args, c.madeAs) })
    if (c.dequeued !== undefined) ops.push({ type: "del", key: K.replicaQueued(docId, c.dequeued) })
  }
}

export class ReplicaStore {
  #ready: Promise<void> | undefined
  #opened = false
  #storage: ReplicaStorage | undefined

  constructor(readonly kv: KVStore) {}

  /**
   * Holds `storage` (the one this store came from) for one CanonClient: waits for a client of
   * this page closing on it (an effect's cleanup, then the effect again), claims it
   * (KVStore.claim: one open client per storage, or two would share a clientId and its command
   * numbers), then loads the client's identity, or makes one and stores it. On failure
   * nothing is held.
   */
  async hold(storage: ReplicaStorage, clientId: string | undefined, runtime: Runtime): Promise<{ clientId: string; secret: string; release: () => void }> {
    this.#storage = storage
    await closingStores.get(storage)
    const release = (await storage.claim?.()) ?? (() => {})
    try {
      const storedId = await this.clientId()
      // Commands are numbered per clientId: sent as another, those the hub already applied
      // would be new commands to it, and applied again.
      if (clientId !== undefined && storedId !== undefined && clientId !== storedId && (await this.holdsUnsent())) {
        throw canonError("client-id-changed", `This storage holds changes not yet sent, numbered as client "${storedId}"; opened as "${clientId}", the hub would take them as new and apply any it already has a second time. Open it as "${storedId}" (or without clientId) until they are sent, then as "${clientId}".`)
      }
      // A new client's id is derived from its secret (core/client-id.ts); an app's own id, or
      // one stored by an older run, keeps its form.
      if (clientId === undefined && storedId === undefined) {
        const made = await newClientIdentity(runtime)
        await this.setIdentity(made.clientId, made.secret)
        return { ...made, release }
      }
      const id = clientId ?? storedId!
      let secret = storedId === id ? await this.secret() : undefined
      if (secret === undefined) {
        // Made with the clientId and stored with it before the first hello: no window in which
        // the hub knows a secret this client could lose.
        secret = newClientSecret(runtime)
        await this.setIdentity(id, secret)
      }
      return { clientId: id, secret, release }
    } catch (e) {
      release()
      throw e
    }
  }

  /** The client holding this store is closing (`closed` settles once it has let go): a client opened on the storage in this page waits for it. */
  closing(closed: Promise<void>): void {
    const storage = this.#storage!
    const done = closed.catch(() => {})
    closingStores.set(storage, done)
    void done.then(() => closingStores.get(storage) === done && closingStores.delete(storage))
  }

  /** Checks the storage format once, before the first read or write (core/store/format.ts). */
  open(): Promise<void> {
    return (this.#ready ??= ensureReplicaFormat(this.kv).then(() => {
      this.#opened = true
    }))
  }

  /** Whether any document's outbox or queue holds a change. */
  private async holdsUnsent(): Promise<boolean> {
    for (const prefix of [K.replicaOutboxAll, K.replicaQueueAll]) {
      if ((await this.kv.range({ gte: prefix, lt: K.prefixEnd(prefix), limit: 1 })).length > 0) return true
    }
    return false
  }

  async clientId(): Promise<string | undefined> {
    await this.open()
    const raw = await this.kv.get(K.replicaClientId)
    if (raw === undefined) return undefined
    const v = decodeRecord(raw, "client id", "-", K.replicaClientId, (x) => x)
    return typeof v === "string" ? v : undefined
  }

  async setClientId(id: string): Promise<void> {
    await this.open()
    await this.kv.batch([{ type: "put", key: K.replicaClientId, value: encodeCanonical(id) }])
  }

  /** The secret that proves this replica's clientId (see core/authority/identity.ts). */
  async secret(): Promise<string | undefined> {
    await this.open()
    const raw = await this.kv.get(K.replicaSecret)
    if (raw === undefined) return undefined
    const v = decodeRecord(raw, "client secret", "-", K.replicaSecret, (x) => x)
    return typeof v === "string" ? v : undefined
  }

  /** Stores a clientId and its secret together: one is never kept without the other. */
  async setIdentity(id: string, secret: string): Promise<void> {
    await this.open()
    await this.kv.batch([
      { type: "put", key: K.replicaClientId, value: encodeCanonical(id) },
      { type: "put", key: K.replicaSecret, value: encodeCanonical(secret) },
    ], { sync: true })
  }

  async load(docId: string): Promise<StoredReplicaDoc | undefined> {
    await this.open()
    const metaKey = K.replicaMeta(docId)
    const rawMeta = await this.kv.get(metaKey)
    if (rawMeta === undefined) return undefined
    const meta = decodeRecord(rawMeta, "replica meta", docId, metaKey, checkReplicaMeta)
    const snapKey = K.replicaSnapshot(docId)
    const rawSnap = await this.kv.get(snapKey)
    const snapshot = rawSnap === undefined ? undefined : decodeRecord(rawSnap, "snapshot", docId, snapKey, checkSnapshot)
    const ePrefix = K.replicaEntryPrefix(docId)
    const entries: Entry[] = []
    for (const [key, value] of await this.kv.range({ gte: ePrefix, lt: K.prefixEnd(ePrefix) })) {
      const seq = K.seqFromKey(key)
      entries.push(decodeRecord(value, `entry ${seq}`, docId, key, entryChecker(seq)))
    }
    const oPrefix = K.replicaOutboxPrefix(docId)
    const outbox: { clientSeq: number; name: string; args: unknown; madeAs?: number }[] = []
    for (const [key, value] of await this.kv.range({ gte: oPrefix, lt: K.prefixEnd(oPrefix) })) {
      const clientSeq = K.seqFromKey(key)
      outbox.push({ clientSeq, ...decodeRecord(value, `outbox record ${clientSeq}`, docId, key, checkOutbox) })
    }
    const qPrefix = K.replicaQueuePrefix(docId)
    const queued: QueuedChange[] = []
    for (const [key, value] of await this.kv.range({ gte: qPrefix, lt: K.prefixEnd(qPrefix) })) {
      const n = K.seqFromKey(key)
      const { name: field, args: update } = decodeRecord(value, `queued change ${n}`, docId, key, checkOutbox)
      queued.push({ key: n, field, update })
    }
    const provisional = (await this.kv.get(K.replicaProvisional(docId))) !== undefined
    return { meta, snapshot, entries, outbox, provisional, queued }
  }

  /** Moves outbox records to new clientSeqs (the hub said numbering resumes higher), atomically with the meta. */
  async renumberOutbox(docId: string, meta: ReplicaMeta, moves: ReadonlyArray<{ from: number; to: number; name: string; args: unknown; madeAs?: number }>): Promise<void> {
    if (!this.#opened) await this.open()
    const ops: BatchOp[] = []
    for (const m of moves) ops.push({ type: "del", key: K.replicaOutbox(docId, m.from) })
    for (const m of moves) ops.push({ type: "put", key: K.replicaOutbox(docId, m.to), value: encodeOutbox(m.name, m.args, m.madeAs) })
    ops.push({ type: "put", key: K.replicaMeta(docId), value: encodeReplicaMeta(meta) })
    await this.kv.batch(ops)
  }

  /** What document `docId` opens with from this store (undefined: nothing stored): core/store/replica-open.ts. */
  openDoc<S>(docId: string, machine: Machine<S, any>): Promise<DocInit<S> | undefined> {
    return openStoredDoc(this, docId, machine)
  }

  /** A document's lane to this store: its writes in order, with their carry and retry (core/store/stored-lane.ts). */
  lane<T>(host: LaneHost<T>, init: StoredLaneInit): StoredLane<T> {
    return new StoredLane(this, host, init)
  }

  async confirm(docId: string, batch: ConfirmBatch): Promise<void> {
    if (!this.#opened) await this.open()
    const ops: BatchOp[] = []
    if (batch.snapshot !== undefined) {
      const { seq, state, dropFrom, dropTo } = batch.snapshot
      ops.push({ type: "put", key: K.replicaSnapshot(docId), value: encodeSnapshot(seq, state) })
      for (let s = dropFrom; s <= dropTo; s++) ops.push({ type: "del", key: K.replicaEntry(docId, s) })
      ops.push(batch.provisional === true
        ? { type: "put", key: K.replicaProvisional(docId), value: encodeCanonical(true) }
        : { type: "del", key: K.replicaProvisional(docId) })
    }
    for (const e of batch.entries) {
      if (batch.snapshot !== undefined && e.seq <= batch.snapshot.seq) continue
      ops.push({ type: "put", key: K.replicaEntry(docId, e.seq), value: encodeEntry(e) })
    }
    for (const cs of batch.settled) ops.push({ type: "del", key: K.replicaOutbox(docId, cs) })
    // Queue records first: a command in the same batch that sends one (a retry carries both) takes it out.
    for (const q of batch.queued ?? []) ops.push({ type: "put", key: K.replicaQueued(docId, q.key), value: encodeOutbox(q.field, q.update) })
    outboxOps(docId, ops, batch.outbox ?? [])
    ops.push({ type: "put", key: K.replicaMeta(docId), value: encodeReplicaMeta(batch.meta) })
    await this.kv.batch(ops)
  }
}


const wrapped = new WeakMap<KVStore, ReplicaStorage>()

/**
 * A KVStore of your own, made a storage CanonClient can keep a replica in
 * (`storage: replicaStorage(kv)`): it calls `kv` for everything, and the same `kv` gives the
 * same storage. The adapters' stores (MemoryStorage, IndexedDbStorage, LevelStorage) need
 * no wrapping. The replica layer reaches an app's bundle through here or through those
 * adapters, never when it passes no storage.
 */
export const replicaStorage = (kv: KVStore): ReplicaStorage => {
  if (typeof (kv as Partial<ReplicaStorage>)[REPLICA_STORE] === "function") return kv as ReplicaStorage
  let s = wrapped.get(kv)
  if (s === undefined) {
    s = {
      get: (key) => kv.get(key),
      batch: (ops, options) => kv.batch(ops, options),
      range: (options) => kv.range(options),
      close: () => kv.close(),
      ...(kv.claim !== undefined ? { claim: () => kv.claim!() } : {}),
      [REPLICA_STORE]: () => new ReplicaStore(kv),
    }
    wrapped.set(kv, s)
  }
  return s
}
