/**
 * In-memory KVStore: a sorted array with binary search. For tests, the simulator, and apps
 * that want no persistence.
 *
 * For the simulator it can model a disk: with `latency`, a batch becomes durable only after
 * a (virtual) delay, in order, and `crash()` discards every batch not yet durable, as a
 * killed process loses writes still in flight.
 */
import { canonError, type BatchOp, type BatchOptions, type KVStore, type RangeOptions, type Runtime } from "../../core/index.js"

export const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return a.length - b.length
}

export interface MemoryStorageOptions {
  /** Make writes take virtual time (simulator). */
  readonly latency?: { readonly runtime: Runtime; readonly ms: () => number }
}

export class MemoryStorage implements KVStore {
  private keys: Uint8Array[] = []
  private values: Uint8Array[] = []
  private closed = false
  private lastDurableAt = 0
  private inflight = new Set<{ cancel(): void }>()

  constructor(private readonly options: MemoryStorageOptions = {}) {}

  private find(key: Uint8Array): number {
    let lo = 0
    let hi = this.keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareBytes(this.keys[mid]!, key) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  private check(): void {
    if (this.closed) throw canonError("closed", "The memory store is closed.")
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check()
    const i = this.find(key)
    return i < this.keys.length && compareBytes(this.keys[i]!, key) === 0 ? this.values[i]!.slice() : undefined
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
      const i = this.find(op.key)
      const exists = i < this.keys.length && compareBytes(this.keys[i]!, op.key) === 0
      if (op.type === "put") {
        if (exists) this.values[i] = op.value
        else {
          this.keys.splice(i, 0, op.key)
          this.values.splice(i, 0, op.value)
        }
      } else if (exists) {
        this.keys.splice(i, 1)
        this.values.splice(i, 1)
      }
    }
  }

  async range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>> {
    this.check()
    const start = options.gte ? this.find(options.gte) : 0
    const end = options.lt ? this.find(options.lt) : this.keys.length
    const limit = options.limit ?? Infinity
    const out: Array<readonly [Uint8Array, Uint8Array]> = []
    if (options.reverse) {
      for (let i = end - 1; i >= start && out.length < limit; i--) out.push([this.keys[i]!.slice(), this.values[i]!.slice()])
    } else {
      for (let i = start; i < end && out.length < limit; i++) out.push([this.keys[i]!.slice(), this.values[i]!.slice()])
    }
    return out
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
    return this.keys.length
  }
}
