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
  /** Armed timers of this process, each with where it was set (formatted only if reported). */
  private readonly timers = new Map<Timer, Error>()
  /** Set once the process's component closed gracefully: from then on it must do nothing. */
  private closedReport: ((what: string) => void) | undefined

  /**
   * `stepped`: how far this machine's wall clock is off (the simulator steps it); its steady
   * clock is not. `cpu`: the simulated CPU time it burnt (cpu.ts), which its steady clock counts.
   */
  constructor(readonly name: string, private readonly base: Runtime, private readonly disk: MemoryStorage, private readonly stepped: () => number = () => 0, private readonly cpu: () => number = () => 0) {}

  readonly runtime: Runtime = {
    now: () => this.base.now() + this.stepped(),
    monotonic: () => this.base.now() + this.cpu(),
    random: () => this.base.random(),
    // New clients derive their ids from their secrets (core/client-id.ts), as in a browser.
    digest: (data) => this.base.digest!(data),
    setTimer: (ms, fn) => {
      if (this.closedReport !== undefined) {
        this.closedReport(`set a ${ms} ms timer after its close() resolved`)
        return { cancel() {} }
      }
      if (!this.alive) return { cancel() {} }
      const t = this.base.setTimer(ms, () => {
        this.timers.delete(t)
        if (this.alive) fn()
      })
      this.timers.set(t, new Error(`${ms} ms timer`))
      return { cancel: () => { t.cancel(); this.timers.delete(t) } }
    },
  }

  /** The process's view of its disk: dead processes neither read nor write. */
  readonly storage: KVStore = {
    get: (key: Uint8Array) => (this.alive ? this.disk.get(key) : never()),
    batch: (ops: ReadonlyArray<BatchOp>, options?: BatchOptions) => {
      if (this.closedReport !== undefined) {
        this.closedReport(`wrote ${ops.length} key(s) to its disk after its close() resolved`)
        return never()
      }
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

  /**
   * The component closed gracefully (its close() resolved): the process exits without losing
   * anything written. A timer still armed then, and any timer or write afterwards, is reported:
   * a closed component must be quiet (DESIGN invariant 10).
   */
  exitAfterClose(report: (what: string) => void): void {
    if (this.timers.size > 0) report(`had ${this.timers.size} timer(s) still armed when its close() resolved; the first: ${this.armedTimers()[0]}`)
    this.closedReport = report
    this.alive = false
    for (const t of this.timers.keys()) t.cancel()
    this.timers.clear()
  }

  /** Its armed timers, each as its delay and where it was set (a few frames). */
  armedTimers(): string[] {
    return [...this.timers.values()].map((e) => {
      const frames = (e.stack ?? "").split("\n").slice(1).filter((l) => !/process\.ts|guard\.ts|virtual-runtime/.test(l)).slice(0, 4)
      return `${e.message}, set ${frames.map((l) => l.trim().replace(/^at /, "")).join(" < ")}`
    })
  }

  kill(): void {
    this.alive = false
    for (const t of this.timers.keys()) t.cancel()
    this.timers.clear()
    this.disk.crash()
  }
}
