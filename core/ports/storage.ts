/**
 * The Storage port: an ordered key-value store with atomic batches, the contract every
 * storage adapter implements (memory, LevelDB; a replicated database could too).
 *
 * Keys and values are bytes; keys sort bytewise (unsigned). Canon's own records and key
 * layout live in core/store on top of this port, so an adapter only has to be a correct
 * ordered map. Every adapter passes the shared suite in test/storage-conformance. A client's
 * storage is a ReplicaStorage (below): the adapters' stores are; `replicaStorage(kv)` makes
 * any other KVStore one.
 *
 * @example
 * ```ts
 * const kv = new MemoryStorage()
 * await kv.batch([{ type: "put", key: k, value: v }])
 * const rows = await kv.range({ gte: lo, lt: hi, limit: 100 })
 * ```
 */
import type { ReplicaStore } from "../store/replica-store.js"

export type BatchOp =
  | { readonly type: "put"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: "del"; readonly key: Uint8Array }

export interface RangeOptions {
  /** Inclusive lower bound. */
  readonly gte?: Uint8Array
  /** Exclusive upper bound. */
  readonly lt?: Uint8Array
  /** At most this many rows. */
  readonly limit?: number
  /** Highest keys first. */
  readonly reverse?: boolean
}

export interface BatchOptions {
  /** Flush to durable media before resolving (fsync). Slower; survives power loss. */
  readonly sync?: boolean
}

export interface KVStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  /**
   * All operations apply, or none do. Resolves once they are durable (per `sync`). The store
   * must not keep references to the given keys and values past the call (copy them).
   */
  batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions): Promise<void>
  /** Rows in key order (or reverse), as [key, value]. */
  range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>>
  /** Releases the store; further calls fail with a `closed` CanonError. */
  close(): Promise<void>
  /**
   * Holds the store for one replica (CanonClient.open calls it) against other clients, tabs,
   * workers or processes on the same data; rejects with a `storage-in-use` CanonError while
   * another holds it. Resolves with the function that lets go. Every adapter here holds the
   * object (core/store/hold.ts; memory: a crash lets go), and IndexedDB (canon/indexeddb,
   * canon/level in a browser) a Web Lock too; LevelDB on disk locks its directory at open.
   * Optional, but a store without it is not protected. Two replicas on one store would share
   * a clientId and its command numbers, and the hub would take one's commands for the
   * other's retries.
   */
  claim?(): Promise<() => void>
}

/**
 * Where a storage keeps the replica layer that CanonClient writes through (the records of
 * core/store/replica-store.ts): a store a client can open carries it under this key, so an
 * app that passes no storage does not ship that code.
 */
export const REPLICA_STORE: unique symbol = Symbol.for("canon.replica-store")

/**
 * A KVStore a CanonClient can keep its replica in (ClientOptions.storage). The adapters'
 * stores are ones (MemoryStorage, IndexedDbStorage, LevelStorage); any other KVStore becomes
 * one with `replicaStorage(kv)` (from "canon").
 */
export interface ReplicaStorage extends KVStore {
  /** @internal The replica's records on this store (a new ReplicaStore over it). */
  [REPLICA_STORE](): ReplicaStore
}
