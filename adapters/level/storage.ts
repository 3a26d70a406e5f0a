/**
 * LevelDB KVStore on the `level` package: classic-level (LevelDB) on Node, browser-level
 * (IndexedDB) in browsers through the package's `browser` field. Keys and values are raw
 * bytes (`view` encoding); keys sort bytewise unsigned, as the Storage port requires.
 *
 * Durability:
 * - Every `batch` is one LevelDB write batch: all of its operations land, or none do, even
 *   if the process is killed mid-write (LevelDB appends the batch to its write-ahead log as
 *   one record and replays only whole records).
 * - `sync: false` (the default): a batch resolves once it is in LevelDB's log in the OS page
 *   cache. It survives a crash or SIGKILL of the process, but not a power loss or kernel
 *   crash, which can lose the last batches (never half of one).
 * - `sync: true`: LevelDB fsyncs its log before each batch resolves, so an acknowledged
 *   batch survives power loss too. The store-wide option is a floor: a batch is synced when
 *   the store says `sync: true` or the call passes `{ sync: true }`.
 * - Cost, measured by bench/storage.ts (`npm run bench -- --suite storage`, figures in
 *   bench/results/storage.json) on a shared 2-core VM (ext4 on virtio; noisy, other jobs ran):
 *   in group commits of 100 commands Canon acknowledged 195,000 commands/s with sync off and
 *   88,000/s with sync on (the last full run; earlier full runs gave 231k/172k and
 *   167k/114k), i.e. fsync added ~0.15-0.6 ms per group commit on this disk. The price is
 *   one fsync per group commit, not per command: the more commands share a commit, the less
 *   each pays. Expect a slower fsync on most real disks; measure yours with the bench.
 *   On IndexedDB `sync` is ignored: the browser decides when a transaction is flushed.
 *
 * Opening takes the directory's LevelDB lock: a second process (or a second LevelStorage in
 * this one) on the same directory fails with a CanonError `storage-in-use`. In a browser,
 * IndexedDB has no such lock: `claim` (which CanonClient.open calls) holds the database with
 * a Web Lock, the same one canon/indexeddb takes, so a client in a second tab is refused
 * `storage-in-use` instead of sharing the first one's clientId. After `close()` every
 * call rejects with a CanonError `closed`, as MemoryStorage does.
 *
 * @example
 * ```ts
 * const storage = await LevelStorage.open("./data/hub", { sync: true })
 * const hub = new Hub({ machines: [Todo], storage, runtime: systemRuntime })
 * ```
 */
import { Level } from "level"
import { CanonError, canonError, type BatchOp, type BatchOptions, type KVStore, type RangeOptions } from "../../core/index.js"
import { holdWebLock } from "../system/web-lock.js"
import { Hold } from "../../core/store/hold.js"
import { REPLICA_STORE, type ReplicaStorage } from "../../core/ports/storage.js"
import { ReplicaStore } from "../../core/store/replica-store.js"

export interface LevelOpenOptions {
  /** fsync LevelDB's log before each batch resolves (survives power loss). Default false. */
  readonly sync?: boolean
}

export interface LevelStorageOptions extends LevelOpenOptions {
  /** Directory of the LevelDB store (in browsers: the IndexedDB database name). */
  readonly location: string
}

type Db = Level<Uint8Array, Uint8Array>

/** Rows read per native call while iterating (bounded by READ_AHEAD_BYTES). */
const READ_CHUNK = 4096
/** classic-level's iterator stops filling a chunk past this many bytes (its default is 16 KiB). */
const READ_AHEAD_BYTES = 1 << 20

/** A plain Uint8Array over the same bytes: classic-level hands out Buffers, whose `slice` does not copy. */
const plain = (b: Uint8Array): Uint8Array => (b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength))

const levelCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === "string" ? code : undefined
}

const describe = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e)
  const cause = (e as { cause?: unknown }).cause
  return cause instanceof Error && cause.message !== e.message ? `${e.message}: ${describe(cause)}` : e.message
}

/** Turns a failure to open into a sentence that says what to do. */
const openError = (location: string, e: unknown): CanonError => {
  const cause = (e as { cause?: unknown } | null)?.cause
  const code = levelCode(cause) ?? levelCode(e)
  const detail = describe(cause ?? e)
  switch (code) {
    case "LEVEL_LOCKED":
      return canonError("storage-in-use", `The store at "${location}" is in use by another process (or another LevelStorage in this one): close it first, or open a different directory. (${detail})`)
    case "LEVEL_CORRUPTION":
      return canonError("storage-corrupt", `The store at "${location}" is damaged and LevelDB cannot open it; restore it from a backup or repair it with LevelDB's repair tool. (${detail})`)
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return canonError("storage-failed", `Canon may not write to "${location}": give this process read and write access to the directory, or choose another location. (${detail})`)
    case "EEXIST":
    case "ENOTDIR":
      return canonError("storage-failed", `"${location}" is not a directory (a file is in the way): choose a directory path for the store. (${detail})`)
    case "LEVEL_IO_ERROR":
      return canonError("storage-failed", `LevelDB could not read or write its files in "${location}": check that this process may read and write the directory, and that no file of the store was removed (if one was, restore the store from a backup). (${detail})`)
    case "ENOSPC":
      return canonError("storage-failed", `The disk holding "${location}" is full: free some space and open the store again. (${detail})`)
    default:
      return canonError("storage-failed", `The store at "${location}" could not be opened: check that the directory exists and is readable and writable by this process. (${detail})`)
  }
}

export class LevelStorage implements ReplicaStorage {
  private closed = false
  private readonly hold = new Hold()

  private constructor(private readonly db: Db, readonly location: string, private readonly sync: boolean) {}

  /** Opens (creating if missing) the store in `location`. Rejects with a CanonError that says what to do. */
  static open(options: LevelStorageOptions): Promise<LevelStorage>
  static open(location: string, options?: LevelOpenOptions): Promise<LevelStorage>
  static async open(where: string | LevelStorageOptions, more: LevelOpenOptions = {}): Promise<LevelStorage> {
    const options: LevelStorageOptions = typeof where === "string" ? { ...more, location: where } : where
    let db: Db
    try {
      db = new Level<Uint8Array, Uint8Array>(options.location, { keyEncoding: "view", valueEncoding: "view" })
      await db.open()
    } catch (e) {
      throw openError(options.location, e)
    }
    return new LevelStorage(db, options.location, options.sync ?? false)
  }

  private closedError(): CanonError {
    return canonError("closed", `The LevelDB store at "${this.location}" is closed.`)
  }

  /** A level failure as a CanonError: `closed` after close(), else storage-failed / storage-corrupt. */
  private failure(what: string, e: unknown): CanonError {
    if (e instanceof CanonError) return e
    if (this.closed) return this.closedError()
    const code = levelCode(e)
    if (code === "LEVEL_CORRUPTION") return canonError("storage-corrupt", `LevelDB ${what} failed on "${this.location}": the store is damaged (${describe(e)}).`)
    return canonError("storage-failed", `LevelDB ${what} failed on "${this.location}": ${describe(e)}`)
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.closed) throw this.closedError()
    try {
      const value = await this.db.get(key)
      return value === undefined ? undefined : plain(value)
    } catch (e) {
      throw this.failure("get", e)
    }
  }

  async batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions): Promise<void> {
    if (this.closed) throw this.closedError()
    if (ops.length === 0) return
    // A chained batch, not db.batch(array, options): abstract-level copies every op of an
    // array batch into a new object merged with the options ({ ...options, ...op }), which
    // with a non-empty options object ran 3.5x slower (110k vs 390k puts/s in batches of
    // 102); the chained form hands each op straight to the native write batch (550k puts/s).
    // Each put/del copies its bytes into that batch at once, so the caller may reuse its
    // buffers as soon as this returns; nothing is written before write(), and a malformed
    // op discards the whole batch.
    let chain: ReturnType<Db["batch"]>
    try {
      chain = this.db.batch()
    } catch (e) {
      throw this.failure("batch", e)
    }
    try {
      for (const op of ops) {
        if (op.type === "put") chain.put(op.key, op.value)
        else if (op.type === "del") chain.del(op.key)
        else throw new TypeError(`A batch operation must be "put" or "del", not ${JSON.stringify((op as { type?: unknown }).type)}.`)
      }
    } catch (e) {
      await chain.close().catch(() => {})
      throw this.failure("batch", e)
    }
    try {
      await (this.sync || options?.sync === true ? chain.write({ sync: true }) : chain.write())
    } catch (e) {
      throw this.failure("batch", e)
    }
  }

  async range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>> {
    if (this.closed) throw this.closedError()
    const limit = options.limit === undefined ? Infinity : Math.max(0, Math.floor(options.limit))
    const out: Array<readonly [Uint8Array, Uint8Array]> = []
    if (limit === 0) return out
    const it = this.db.iterator({
      ...(options.gte !== undefined ? { gte: options.gte } : {}),
      ...(options.lt !== undefined ? { lt: options.lt } : {}),
      ...(limit !== Infinity ? { limit } : {}),
      reverse: options.reverse === true,
      highWaterMarkBytes: READ_AHEAD_BYTES,
    })
    try {
      while (out.length < limit) {
        const rows = await it.nextv(Math.min(READ_CHUNK, limit - out.length))
        if (rows.length === 0) break
        for (const [k, v] of rows) out.push([plain(k), plain(v)])
      }
    } catch (e) {
      throw this.failure("range", e)
    } finally {
      await it.close().catch(() => {})
    }
    return out
  }

  /**
   * Holds the store for one client (see KVStore.claim): this object for one client of this
   * process or page; across processes, on Node, the directory's lock taken at open; across
   * tabs, in a browser, a Web Lock on the IndexedDB database.
   */
  claim(): Promise<() => void> {
    return holdWebLock(this.hold, `level-js-${this.location}`, () => canonError("storage-in-use", `The store "${this.location}" is in use by another client (in this process or page, or another tab or worker): open a store of another name (one per tab), or close that client.`))
  }

  /** Closes the database (idempotent). Later calls reject with a CanonError `closed`. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.db.close()
  }

  /** The replica layer on this store (ReplicaStorage): a CanonClient takes this store as its storage as it is. */
  [REPLICA_STORE](): ReplicaStore {
    return new ReplicaStore(this)
  }
}
