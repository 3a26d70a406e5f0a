/**
 * What a replica's store holds of the collaborative text, read as the app version that wrote
 * it reads it: the reference for the text an upgraded app shows when it opens that store.
 * core/schema/replica-upgrade.ts migrates a stored replica's state to the new version; the
 * CRDT fields must come along. Without this check the simulator could not see them dropped:
 * an upgraded store is provisional, so the replica fetches the hub's state as it connects,
 * its outbox (merges kept as they are) goes again, and by the end of a seed every text has
 * converged; what the user saw in between (the text gone, offline edits built on nothing) was
 * never compared.
 *
 * Why a copy of the disk: the replica's disk injects read faults and read latency from the
 * seed's streams, so reading it for a check would change the world. The copy is fed each batch
 * as it becomes durable on the disk (MemoryStorage `onDurable`), so it holds exactly what the
 * disk holds; it is taken synchronously just before the new app opens the store, and read
 * after, into a fault-free store of its own, without virtual time (only microtasks).
 */
import { CanonClient, type BatchOp, type ClientTransport, type Doc, type Machine } from "../../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { TEXT_FIELDS } from "./crdt-text.js"
import { codeOf } from "./guard.js"

/** The reference client never connects (autoConnect off): nothing of it reaches the network. */
const NOWHERE: ClientTransport = {
  connect: () => {
    throw new Error("the stored-text reader never connects")
  },
}

/** A store's rows, as a backup tool would read them. */
export type StoredRows = ReadonlyArray<readonly [Uint8Array, Uint8Array]>

export class StoredTexts {
  /** Per replica, its disk's durable rows by key (the key's bytes as a latin1 string). */
  private readonly copies = new Map<string, Map<string, readonly [Uint8Array, Uint8Array]>>()

  /** Keeps a copy of `replica`'s disk from now on (call it while the disk is still empty). */
  watch(replica: string): void {
    this.copies.set(replica, new Map())
  }

  watching(replica: string): boolean {
    return this.copies.has(replica)
  }

  forget(replica: string): void {
    this.copies.delete(replica)
  }

  /** The disk's `onDurable`: the batch as it landed (its buffers are the disk's own, never written again). */
  durable(replica: string, ops: ReadonlyArray<BatchOp>): void {
    const copy = this.copies.get(replica)
    if (copy === undefined) return
    for (const op of ops) {
      const k = Buffer.from(op.key.buffer, op.key.byteOffset, op.key.byteLength).toString("latin1")
      if (op.type === "put") copy.set(k, [op.key, op.value])
      else copy.delete(k)
    }
  }

  /**
   * What `replica`'s disk holds now. Synchronous, so that taking it moves nothing in the
   * seed: the simulation's own awaits are not lengthened, and no draw changes place.
   */
  take(replica: string): StoredRows {
    return [...(this.copies.get(replica)?.values() ?? [])]
  }

  /**
   * Each text field of `docId` as an app running `machine` shows it on opening a store of
   * `rows` (confirmed text and unsent edits), before it connects; undefined when that app
   * cannot open it (the store is of a newer version already: an earlier upgrade migrated it).
   */
  async read(rows: StoredRows, machine: Machine<any, any>, docId: string): Promise<Record<string, string> | undefined> {
    const store = new MemoryStorage()
    await store.batch(rows.map(([key, value]) => ({ type: "put" as const, key, value })))
    // A runtime of its own: the reader draws nothing from the seed's streams and sets no timer of the world's.
    const client = await CanonClient.open({ transport: NOWHERE, runtime: new VirtualRuntime(1), storage: store, autoConnect: false })
    try {
      const doc = await client.open(machine, docId)
      return textsOf(doc)
    } catch (e) {
      if (codeOf(e) === "machine-mismatch") return undefined
      throw e
    } finally {
      void client.close().catch(() => {})
    }
  }
}

/** Each text field an open SimText document has (v1 has no `notes`), as its app shows it. */
export const textsOf = (doc: Doc<any>): Record<string, string> => {
  const crdt = doc.crdt as Record<string, unknown>
  return Object.fromEntries(Object.entries(TEXT_FIELDS).filter(([field]) => crdt[field] !== undefined).map(([field, access]) => [field, access.read(crdt[field])]))
}
