/**
 * What keeps one simulated run honest and bounded, whatever the engine does:
 * - a Runtime over the virtual clock whose timers cannot throw into the event loop (a throw
 *   is a `crash:` failure of the seed) and are counted against an event budget;
 * - budgets of events and of real time: past either the world is livelocked (`liveness:`);
 * - unhandled promise rejections (reported unless a handler comes late);
 * - the realm's shared objects (globals.ts), watched while running and restored after.
 */
import type { Runtime, Timer } from "../../core/index.js"
import type { VirtualRuntime } from "../../adapters/memory/index.js"
import { diffGlobals, restoreGlobals, snapshotGlobals } from "./globals.js"

export const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))
export const codeOf = (e: unknown): string => ((e as { code?: unknown })?.code as string | undefined) ?? "error"

export class RunGuard {
  private timers = 0
  private readonly realStart = Date.now()
  /** Called as each event of the world begins (the simulated CPU's stretches end there: cpu.ts). */
  eventStarted: (() => void) | undefined
  /** Set once a budget is exhausted: every phase stops. */
  stuck = false
  private readonly unhandled = new Map<Promise<unknown>, string>()
  private readonly globals = snapshotGlobals()
  private globalsReported = false

  /** The virtual clock, with timers that report what they throw. */
  readonly runtime: Runtime

  constructor(
    private readonly vrt: VirtualRuntime,
    private readonly fail: (failure: string) => void,
    private readonly log: (line: string) => void,
    private readonly maxEvents: number,
    private readonly maxRealMs: number,
  ) {
    this.runtime = {
      now: () => vrt.now(),
      random: () => vrt.random(),
      setTimer: (ms: number, fn: () => void): Timer => vrt.setTimer(ms, () => {
        this.timers++
        this.eventStarted?.()
        try {
          fn()
        } catch (e) {
          fail(`crash: an exception escaped into the event loop: ${codeOf(e)}: ${message(e)}`)
        }
      }),
    }
    process.on("unhandledRejection", this.onUnhandled)
    process.on("rejectionHandled", this.onHandled)
  }

  /** Timer events run so far. */
  get events(): number {
    return this.timers
  }

  private readonly onUnhandled = (e: unknown, p: Promise<unknown>) => {
    this.unhandled.set(p, `crash: unhandled rejection: ${codeOf(e)}: ${message(e)}`)
    this.log(`unhandled rejection: ${message(e)}`)
  }

  private readonly onHandled = (p: Promise<unknown>) => {
    this.unhandled.delete(p)
  }

  /** True once the run is livelocked (checked between events, so every phase stops). */
  readonly overBudget = (): boolean => {
    if (this.stuck) return true
    const overEvents = this.timers > this.maxEvents
    if (!overEvents && Date.now() - this.realStart <= this.maxRealMs) return false
    this.stuck = true
    this.fail(`liveness: the world did not settle within ${overEvents ? `${this.maxEvents} events` : `${this.maxRealMs / 1000} s of real time`} (virtual time ${this.vrt.now() - 1_700_000_000_000} ms): a livelock`)
    return true
  }

  /**
   * Awaits `p` while virtual time runs: a promise of the engine may wait on a disk or a
   * timer, and nothing else moves the clock once the phases are over.
   */
  async drive<T>(what: string, p: Promise<T>): Promise<T> {
    let settled = false
    p.then(() => { settled = true }, () => { settled = true })
    await this.vrt.run({ forMs: 30_000, until: () => settled })
    if (settled) return p
    const failure = `liveness: ${what} did not finish in 30 s of virtual time`
    this.fail(failure)
    throw new Error(failure)
  }

  /** Reports a change to Object.prototype and friends (once per run). */
  watchGlobals(): void {
    if (this.globalsReported) return
    const diff = diffGlobals(this.globals)
    if (diff.length === 0) return
    this.globalsReported = true
    this.fail(`globals: ${diff.slice(0, 3).join("; ")}`)
  }

  /** Reports the rejections nobody handled. */
  reportUnhandled(): void {
    for (const m of this.unhandled.values()) this.fail(m)
    this.unhandled.clear()
  }

  /** Ends the run: listeners off, globals put back. */
  dispose(): void {
    process.off("unhandledRejection", this.onUnhandled)
    process.off("rejectionHandled", this.onHandled)
    restoreGlobals(this.globals)
  }
}
