/**
 * In-memory KVStore over an ordered map of sorted blocks (sorted-map.ts). For tests, the
 * simulator, and apps that want no persistence.
 *
 * For the simulator it can model a disk: with `latency`, a batch becomes durable only after
 * a (virtual) delay, in order, and `crash()` discards every batch not yet durable, as a
 * killed process loses writes still in flight. `latency.readMs` makes reads take virtual
 * time too (a read returns what is durable when it completes; a crash leaves it unanswered,
 * as the process that asked is gone). `failWrite` makes chosen batches fail as a disk
 * can: the batch rejects with `storage-failed` and none of it is applied.
 */
import { canonError, type CanonError, type BatchOp, type BatchOptions, type KVStore, type RangeOptions, type Runtime } from "../../core/index.js"
import { Hold } from "../../core/store/hold.js"
import { REPLICA_STORE, type ReplicaStorage } from "../../core/ports/storage.js"
import { ReplicaStore } from "../../core/store/replica-store.js"
import { SortedBytesMap } from "./sorted-map.js"

export { compareBytes } from "./sorted-map.js"

export interface MemoryStorageOptions {
  /** Make writes (and with `readMs`, reads) take virtual time (simulator). A delay of 0 or less is immediate. */
  readonly latency?: { readonly runtime: Runtime; readonly ms: () => number; readonly readMs?: () => number }
  /** Asked once per batch (simulator): true fails that batch, applying nothing. */
  readonly failWrite?: (ops: ReadonlyArray<BatchOp>) => boolean
  /** Asked once per read, after its latency (simulator): true fails it with `storage-failed`. */
  readonly failRead?: () => boolean
  /** Told of each batch as it is asked for, before it is durable (simulator: aim a crash at a write). */
  readonly onBatch?: (ops: ReadonlyArray<BatchOp>) => void
  /** Told of each batch once it is durable (simulator: a shadow of what was ever stored). */
  readonly onDurable?: (ops: ReadonlyArray<BatchOp>) => void
}

export class MemoryStorage implements ReplicaStorage {
  private readonly map = new SortedBytesMap()
  private closed = false
  private lastDurableAt = 0
  private inflight = new Set<{ cancel(): void }>()
  /** The open client holding this store (KVStore.claim). */
  private readonly hold = new Hold()

  constructor(private readonly options: MemoryStorageOptions = {}) {}

  private check(): void {
    if (this.closed) throw canonError("closed", "The memory store is closed.")
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check()
    await this.readDelay()
    this.readFails()
    return this.map.get(key)?.slice()
  }

  private readFails(): void {
    if (this.options.failRead?.() === true) throw canonError("storage-failed", "The memory store failed this read (injected fault).")
  }

  /** With a read latency: waits that long (and forever if the process crashes meanwhile). */
  private readDelay(): Promise<void> | undefined {
    const latency = this.options.latency
    const ms = latency?.readMs?.() ?? 0
    if (latency === undefined || ms <= 0) return undefined
    return new Promise((resolve) => {
      const timer = latency.runtime.setTimer(ms, () => {
        this.inflight.delete(timer)
        resolve()
      })
      this.inflight.add(timer)
    })
  }

  private failure(): CanonError {
    return canonError("storage-failed", "The memory store failed this write (injected fault); nothing of the batch was applied.")
  }

  batch(ops: ReadonlyArray<BatchOp>, _options?: BatchOptions): Promise<void> {
    let copy: BatchOp[]
    try {
      this.check()
      // Copy now: the caller may reuse its buffers before the write lands.
      copy = ops.map((op) => {
        if (op.type === "put") return { type: "put" as const, key: op.key.slice(), value: op.value.slice() }
        if (op.type === "del") return { type: "del" as const, key: op.key.slice() }
        throw canonError("storage-failed", `Unknown batch operation "${(op as { type: unknown }).type}".`)
      })
    } catch (e) {
      return Promise.reject(e)
    }
    const fails = this.options.failWrite?.(copy) ?? false
    this.options.onBatch?.(copy)
    const latency = this.options.latency
    if (latency === undefined) {
      if (fails) return Promise.reject(this.failure())
      this.apply(copy)
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const now = latency.runtime.now()
      const at = Math.max(this.lastDurableAt, now + latency.ms())
      this.lastDurableAt = at
      const timer = latency.runtime.setTimer(at - now, () => {
        this.inflight.delete(timer)
        if (fails) return reject(this.failure())
        this.apply(copy)
        resolve()
      })
      this.inflight.add(timer)
    })
  }

  private apply(ops: ReadonlyArray<BatchOp>): void {
    for (const op of ops) {
      if (op.type === "put") this.map.set(op.key, op.value)
      else this.map.delete(op.key)
    }
    this.options.onDurable?.(ops)
  }

  async range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>> {
    this.check()
    await this.readDelay()
    this.readFails()
    return this.map.range(options.gte, options.lt, options.limit ?? Infinity, options.reverse ?? false).map(([k, v]) => [k.slice(), v.slice()] as const)
  }

  async close(): Promise<void> {
    this.closed = true
  }

  /** One open client at a time (KVStore.claim). A crash lets go, as a dead process's locks go with it. */
  async claim(): Promise<() => void> {
    return this.hold.take(() => canonError("storage-in-use", "This MemoryStorage is held by another open CanonClient: close that client first, or give this one its own storage."))
  }

  /**
   * Simulator: the process died. Writes not yet durable are lost and reads in flight are
   * never answered; the data stays for a restart.
   */
  crash(): void {
    for (const t of this.inflight) t.cancel()
    this.inflight.clear()
    this.lastDurableAt = 0
    this.hold.reset()
  }

  /** Number of keys (tests). */
  get size(): number {
    return this.map.size
  }

  /** The replica layer on this store (ReplicaStorage): a CanonClient takes this store as its storage as it is. */
  [REPLICA_STORE](): ReplicaStore {
    return new ReplicaStore(this)
  }
}
