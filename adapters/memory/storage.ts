/**
 * In-memory KVStore: a sorted array with binary search. For tests, the simulator, and apps
 * that want no persistence.
 *
 * For the simulator it can model a disk: with `latency`, a batch becomes durable only after
 * a (virtual) delay, in order, and `crash()` discards every batch not yet durable, as a
 * killed process loses writes still in flight. `latency.readMs` makes reads take virtual
 * time too (a read returns what is durable when it completes; a crash leaves it unanswered,
 * as the process that asked is gone). `failWrite` makes chosen batches fail as a disk
 * can: the batch rejects with `storage-failed` and none of it is applied.
 */
import { canonError, type CanonError, type BatchOp, type BatchOptions, type KVStore, type RangeOptions, type Runtime } from "../../core/index.js"

export const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return a.length - b.length
}

export interface MemoryStorageOptions {
  /** Make writes (and with `readMs`, reads) take virtual time (simulator). A delay of 0 or less is immediate. */
  readonly latency?: { readonly runtime: Runtime; readonly ms: () => number; readonly readMs?: () => number }
  /** Asked once per batch (simulator): true fails that batch, applying nothing. */
  readonly failWrite?: () => boolean
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
    await this.readDelay()
    const i = this.find(key)
    return i < this.keys.length && compareBytes(this.keys[i]!, key) === 0 ? this.values[i]!.slice() : undefined
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
    const fails = this.options.failWrite?.() ?? false
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
    await this.readDelay()
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

  /**
   * Simulator: the process died. Writes not yet durable are lost and reads in flight are
   * never answered; the data stays for a restart.
   */
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
