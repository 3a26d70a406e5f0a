/**
 * IndexedDB KVStore for browsers, on the browser's own API: no dependency. `canon/level` also
 * reaches IndexedDB in a browser (through `browser-level`), but brings abstract-level, its
 * transcoder and Node shims: about 22 kB of a gzipped app (rows 2a and 2c of `npm run bench
 * -- --suite bundle`), to wrap the four calls the Storage port needs.
 *
 * Layout: the database `level-js-<name>` holds one object store `<name>` with binary keys
 * and Uint8Array values, which is exactly what `canon/level` writes in a browser for the
 * location `<name>`. An app moving from `LevelStorage.open(name)` to
 * `IndexedDbStorage.open(name)` keeps its stored documents and outboxes (and back).
 * Keys are compared bytewise unsigned by IndexedDB itself (binary keys), the port's order.
 *
 * Durability:
 * - Every `batch` is one readwrite transaction: all of its operations land, or none do,
 *   also if the tab is closed or crashes mid-write (IndexedDB commits transactions whole).
 * - A batch resolves when its transaction completes. With `sync: false` (the default) the
 *   transaction asks for `relaxed` durability: the browser may report it complete before the
 *   OS flushed it, so a power loss can lose the last batches (never half of one); a crash of
 *   the tab or the browser loses nothing acknowledged. `sync: true` (on the store or the call)
 *   asks for `strict`: flushed first. Browsers without the durability hint use their default.
 *
 * One tab, one replica: `claim` (which CanonClient.open calls) holds the store with a Web
 * Lock, so a client opened on the same name in a second tab is refused `storage-in-use`
 * instead of sharing the first one's clientId (the hub would drop one's commands as the
 * other's retries). Give each tab its own name (the demo: a free slot per tab).
 *
 * After `close()` every call rejects with a CanonError `closed`. If another tab deletes or
 * upgrades the database, this store closes itself (rather than blocking that tab) and later
 * calls reject with `closed`.
 *
 * @example
 * ```ts
 * import { IndexedDbStorage } from "canon/indexeddb"
 * const storage = await IndexedDbStorage.open("my-app")
 * const client = await CanonClient.open({ transport, runtime: systemRuntime, machines: [Todo], storage })
 * ```
 */
import { CanonError, canonError, type BatchOp, type BatchOptions, type KVStore, type RangeOptions } from "../../core/index.js"
import { compareBytes } from "../../core/bytes.js"
import { holdWebLock } from "../system/web-lock.js"
import { Hold } from "../../core/store/hold.js"
import { REPLICA_STORE, type ReplicaStorage } from "../../core/ports/storage.js"
import { ReplicaStore } from "../../core/store/replica-store.js"

export interface IndexedDbOpenOptions {
  /** Ask for `strict` durability on every batch (flushed before it resolves). Default false. */
  readonly sync?: boolean
}

/** The prefix `browser-level` gives its databases: the same name reaches the same data. */
const PREFIX = "level-js-"

const describe = (e: unknown): string => (e instanceof Error || (typeof DOMException !== "undefined" && e instanceof DOMException) ? `${(e as Error).name}: ${(e as Error).message}` : String(e))

/** A failed request or transaction as a CanonError that says what to do. */
const failure = (name: string, what: string, e: unknown): CanonError => {
  if (e instanceof CanonError) return e
  const kind = (e as { name?: unknown } | null)?.name
  if (kind === "QuotaExceededError") {
    return canonError("storage-failed", `The browser refused to store more for this site (IndexedDB "${name}" ${what}: its storage quota is used up): free space on the device, or ask for persistent storage (navigator.storage.persist()). (${describe(e)})`)
  }
  return canonError("storage-failed", `IndexedDB ${what} failed on "${name}": ${describe(e)}`)
}

const request = <T>(req: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })

/** Resolves when the transaction commits; rejects if it aborts or fails. */
const done = (tx: IDBTransaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error ?? new Error("The transaction was aborted."))
  })

/** A Uint8Array of its own: IndexedDB hands back keys as ArrayBuffers and values as structured clones. */
const own = (v: unknown): Uint8Array | undefined => {
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  if (v instanceof ArrayBuffer) return new Uint8Array(v)
  return undefined
}

/** A stored key or value that is not bytes was written by something other than Canon. */
const bytesOf = (name: string, v: unknown): Uint8Array => {
  const b = own(v)
  if (b === undefined) throw canonError("storage-corrupt", `IndexedDB "${name}" holds a ${v === null ? "null" : typeof v} where Canon stores bytes: it was written by something else; open a different name, or delete that database.`)
  return b
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

/** A key as IndexedDB's types spell it (binary keys are any ArrayBufferView). */
const key = (b: Uint8Array): IDBValidKey => b as Uint8Array<ArrayBuffer>

export class IndexedDbStorage implements ReplicaStorage {
  #closed = false
  readonly #hold = new Hold()
  readonly #db: IDBDatabase
  readonly #store: string
  readonly #sync: boolean

  private constructor(db: IDBDatabase, name: string, sync: boolean) {
    this.#db = db
    this.#store = name
    this.#sync = sync
    // Another tab deletes or upgrades the database: step aside instead of blocking it.
    db.onversionchange = () => void this.close()
    // The browser closed it (site data cleared, storage evicted): later calls say `closed`.
    db.onclose = () => {
      this.#closed = true
    }
  }

  /** The store's name (its database is `level-js-<name>`). */
  get name(): string {
    return this.#store
  }

  /**
   * Opens (creating if missing) the store `name`. Rejects with a CanonError `storage-failed`
   * when the browser offers no IndexedDB (some private modes) or refuses to open it.
   */
  static async open(name: string, options: IndexedDbOpenOptions = {}): Promise<IndexedDbStorage> {
    const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB
    if (factory === undefined || typeof IDBKeyRange === "undefined") {
      throw canonError("storage-failed", `This environment has no IndexedDB, so "${name}" cannot be opened: in a browser, check that site data is allowed (some private modes refuse it); elsewhere, use canon/level or canon/memory.`)
    }
    let db: IDBDatabase
    try {
      const req = factory.open(PREFIX + name, 1)
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name)
      }
      db = await request(req)
    } catch (e) {
      throw canonError("storage-failed", `The browser would not open IndexedDB "${name}": check that this site may store data (site settings, private mode) and that no other tab is upgrading it, then reload. (${describe(e)})`)
    }
    if (!db.objectStoreNames.contains(name)) {
      db.close()
      throw canonError("storage-corrupt", `IndexedDB "${PREFIX}${name}" exists but holds no store "${name}": it was written by something else; open a different name, or delete that database.`)
    }
    return new IndexedDbStorage(db, name, options.sync ?? false)
  }

  #closedError(): CanonError {
    return canonError("closed", `The IndexedDB store "${this.#store}" is closed.`)
  }

  #tx(mode: IDBTransactionMode, sync = false): IDBTransaction {
    if (this.#closed) throw this.#closedError()
    try {
      return mode === "readwrite"
        ? this.#db.transaction(this.#store, mode, { durability: sync ? "strict" : "relaxed" })
        : this.#db.transaction(this.#store, mode)
    } catch (e) {
      // The database closed under us (another tab deleted it, or the browser did).
      if (this.#closed || (e as { name?: unknown } | null)?.name === "InvalidStateError") {
        this.#closed = true
        throw this.#closedError()
      }
      throw failure(this.#store, "transaction", e)
    }
  }

  async get(k: Uint8Array): Promise<Uint8Array | undefined> {
    const tx = this.#tx("readonly")
    try {
      const value = await request(tx.objectStore(this.#store).get(key(k)))
      return value === undefined ? undefined : bytesOf(this.#store, value)
    } catch (e) {
      throw failure(this.#store, "get", e)
    }
  }

  async batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions): Promise<void> {
    if (this.#closed) throw this.#closedError()
    if (ops.length === 0) return
    // Checked whole before the transaction opens, so a malformed op applies nothing.
    for (const op of ops) {
      if (op === null || typeof op !== "object") throw new TypeError("A batch operation must be an object.")
      if (op.type !== "put" && op.type !== "del") throw new TypeError(`A batch operation must be "put" or "del", not ${JSON.stringify((op as { type?: unknown }).type)}.`)
      if (!isBytes(op.key)) throw new TypeError("A batch operation's key must be a Uint8Array.")
      if (op.type === "put" && !isBytes(op.value)) throw new TypeError("A put's value must be a Uint8Array.")
    }
    const tx = this.#tx("readwrite", this.#sync || options?.sync === true)
    const committed = done(tx)
    try {
      const store = tx.objectStore(this.#store)
      // put() clones its value at once: the caller may reuse its buffers when this returns.
      for (const op of ops) {
        if (op.type === "put") store.put(op.value, key(op.key))
        else store.delete(key(op.key))
      }
    } catch (e) {
      try {
        tx.abort()
      } catch {
        // already finished
      }
      await committed.catch(() => {})
      throw failure(this.#store, "batch", e)
    }
    try {
      await committed
    } catch (e) {
      throw failure(this.#store, "batch", e)
    }
  }

  async range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>> {
    if (this.#closed) throw this.#closedError()
    const limit = options.limit === undefined ? Infinity : Math.max(0, Math.floor(options.limit))
    const out: Array<readonly [Uint8Array, Uint8Array]> = []
    if (limit === 0) return out
    const { gte, lt } = options
    // IDBKeyRange refuses an empty or inverted range; the port answers it with no rows.
    if (gte !== undefined && lt !== undefined && compareBytes(gte, lt) >= 0) return out
    const range = gte !== undefined && lt !== undefined ? IDBKeyRange.bound(gte, lt, false, true)
      : gte !== undefined ? IDBKeyRange.lowerBound(gte)
        : lt !== undefined ? IDBKeyRange.upperBound(lt, true)
          : undefined
    const tx = this.#tx("readonly")
    const store = tx.objectStore(this.#store)
    try {
      if (options.reverse !== true) {
        // Two bulk reads in one transaction see the same snapshot, so keys and values pair up.
        const count = limit === Infinity ? undefined : limit
        const [keys, values] = await Promise.all([request(store.getAllKeys(range, count)), request(store.getAll(range, count))])
        for (let i = 0; i < keys.length; i++) out.push([bytesOf(this.#store, keys[i]), bytesOf(this.#store, values[i])])
        return out
      }
      await new Promise<void>((resolve, reject) => {
        const req = store.openCursor(range, "prev")
        req.onerror = () => reject(req.error)
        req.onsuccess = () => {
          const cursor = req.result
          if (cursor === null) return resolve()
          try {
            out.push([bytesOf(this.#store, cursor.key), bytesOf(this.#store, cursor.value)])
          } catch (e) {
            return reject(e)
          }
          if (out.length >= limit) return resolve()
          cursor.continue()
        }
      })
      return out
    } catch (e) {
      throw failure(this.#store, "range", e)
    }
  }

  /**
   * Holds this store for one replica against other tabs and workers of the site (a Web Lock
   * named after it, held until the returned function is called): CanonClient.open calls it,
   * and rejects with `storage-in-use` while another tab has a client open on the same name.
   * Where the page has no Web Locks (plain http from a LAN address), it asks the other tabs
   * over a BroadcastChannel instead (adapters/system/tab-locks.ts).
   */
  claim(): Promise<() => void> {
    return holdWebLock(this.#hold, PREFIX + this.#store, () => canonError("storage-in-use", `IndexedDB "${this.#store}" is in use by another client (in this tab, or another tab or worker): open a store of another name (one per tab), or close that client.`))
  }

  /** Closes the database (idempotent). Later calls reject with a CanonError `closed`. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#db.close()
  }

  /** The replica layer on this store (ReplicaStorage): a CanonClient takes this store as its storage as it is. */
  [REPLICA_STORE](): ReplicaStore {
    return new ReplicaStore(this)
  }
}
