/**
 * A simulated process: the runtime, transport and storage handles one peer uses, which can
 * be killed at once (kill -9): timers stop, connections go silent, writes in flight are lost.
 * The storage's contents survive for the next incarnation.
 */
import type {
  BatchOp, BatchOptions, ClientTransport, KVStore, RangeOptions, Runtime, ServerMessage, Timer,
} from "../../core/index.js"
import type { MemoryStorage } from "../../adapters/memory/index.js"

const never = <T>(): Promise<T> => new Promise<T>(() => {})

export class SimProcess {
  alive = true
  /** Writes of this incarnation that failed (injected disk faults). */
  failedWrites = 0
  /** Times the app heard of a storage failure (an error event, a rejected open). */
  reportedFailures = 0
  private readonly timers = new Set<Timer>()

  constructor(readonly name: string, private readonly base: Runtime, private readonly disk: MemoryStorage) {}

  readonly runtime: Runtime = {
    now: () => this.base.now(),
    random: () => this.base.random(),
    setTimer: (ms, fn) => {
      if (!this.alive) return { cancel() {} }
      const t = this.base.setTimer(ms, () => {
        this.timers.delete(t)
        if (this.alive) fn()
      })
      this.timers.add(t)
      return { cancel: () => { t.cancel(); this.timers.delete(t) } }
    },
  }

  /** The process's view of its disk: dead processes neither read nor write. */
  readonly storage: KVStore = {
    get: (key: Uint8Array) => (this.alive ? this.disk.get(key) : never()),
    batch: (ops: ReadonlyArray<BatchOp>, options?: BatchOptions) => {
      if (!this.alive) return never()
      return this.disk.batch(ops, options).catch((e: unknown) => {
        this.failedWrites++
        throw e
      })
    },
    range: (options: RangeOptions) => (this.alive ? this.disk.range(options) : never()),
    close: () => Promise.resolve(),
    // One client per disk (a crash lets go): a second tab on it is refused.
    claim: () => (this.alive ? this.disk.claim() : never()),
  }

  /**
   * Wraps a transport so a dead process hears nothing more. `tamper` sees each message before
   * the process does and may change it (a corrupted frame that still decodes).
   */
  wrapTransport(t: ClientTransport, tamper?: (m: ServerMessage) => ServerMessage | undefined): ClientTransport {
    return {
      connect: (listener) => {
        const conn = t.connect({
          onOpen: () => { if (this.alive) listener.onOpen?.() },
          onMessage: (m) => {
            if (!this.alive) return
            const heard = tamper === undefined ? m : tamper(m)
            if (heard !== undefined) listener.onMessage(heard)
          },
          onClose: (i) => { if (this.alive) listener.onClose(i) },
        })
        return {
          send: (m) => { if (this.alive) conn.send(m) },
          close: (c, r) => conn.close(c, r),
          get bufferedAmount() { return conn.bufferedAmount },
        }
      },
    }
  }

  kill(): void {
    this.alive = false
    for (const t of this.timers) t.cancel()
    this.timers.clear()
    this.disk.crash()
  }
}
