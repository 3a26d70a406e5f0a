/**
 * In-memory KVStore over an ordered map of sorted blocks (sorted-map.ts). For tests, the
 * simulator, and apps that want no persistence.
 *
 * For the simulator it can model a disk: with `latency`, a batch becomes durable only after
 * a (virtual) delay, in order, and `crash()` discards every batch not yet durable, as a
 * killed process loses writes still in flight.
 */
import { canonError, type BatchOp, type BatchOptions, type KVStore, type RangeOptions, type Runtime } from "../../core/index.js"
import { SortedBytesMap } from "./sorted-map.js"

export { compareBytes } from "./sorted-map.js"

export interface MemoryStorageOptions {
  /** Make writes take virtual time (simulator). */
  readonly latency?: { readonly runtime: Runtime; readonly ms: () => number }
}

export class MemoryStorage implements KVStore {
  private readonly map = new SortedBytesMap()
  private closed = false
  private lastDurableAt = 0
  private inflight = new Set<{ cancel(): void }>()

  constructor(private readonly options: MemoryStorageOptions = {}) {}

  private check(): void {
    if (this.closed) throw canonError("closed", "The memory store is closed.")
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check()
    return this.map.get(key)?.slice()
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
    const latency = this.options.latency
    if (latency === undefined) {
      this.apply(copy)
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const now = latency.runtime.now()
      const at = Math.max(this.lastDurableAt, now + latency.ms())
      this.lastDurableAt = at
      const timer = latency.runtime.setTimer(at - now, () => {
        this.inflight.delete(timer)
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
  }

  async range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>> {
    this.check()
    return this.map.range(options.gte, options.lt, options.limit ?? Infinity, options.reverse ?? false).map(([k, v]) => [k.slice(), v.slice()] as const)
  }

  async close(): Promise<void> {
    this.closed = true
  }

  /** Simulator: the process died. Writes not yet durable are lost; the data stays for a restart. */
  crash(): void {
    for (const t of this.inflight) t.cancel()
    this.inflight.clear()
    this.lastDurableAt = 0
  }

  /** Number of keys (tests). */
  get size(): number {
    return this.map.size
  }
}
