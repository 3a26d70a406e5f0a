/**
 * Turns of the event loop, shared by a hub's documents: work that goes on without waiting for
 * I/O (judging commands, replaying a log) runs in slices of `sliceMs` of the runtime's steady
 * clock, whichever documents do it, and then lets the event loop turn.
 *
 * Each document slicing on its own clock is not enough: the first slices of a hundred
 * documents run back to back (their submits arrived in one read), and the timers their next
 * slices wait on fire in one phase of the event loop: seconds without reading a socket. Here
 * the slice is the hub's: once it is used, every document waits for the next turn, and they
 * go in the order they came to wait.
 *
 * @example
 * ```ts
 * const turns = new Turns(runtime, 50)
 * for (const e of entries) {
 *   if (turns.over()) await turns.next()
 *   apply(e)
 * }
 * ```
 */
import { steadyNow, type Runtime, type Timer } from "../ports/runtime.js"

export class Turns {
  /** When the current turn began (steady ms), if work began in it. */
  #began: number | undefined
  /** Turns begun: a timer ending the turn it was set in leaves a later one alone. */
  #turn = 0
  #next: Promise<void> | undefined
  /** The timers this sets, and what each does if it must be done at once (close). */
  readonly #timers = new Map<Timer, () => void>()
  #closed = false

  constructor(private readonly runtime: Runtime, readonly sliceMs: number) {}

  /** Whether this turn's slice is used up. The first call of a turn begins it. */
  over(): boolean {
    if (this.#closed) return false
    if (this.#began === undefined) {
      this.#begin()
      return false
    }
    return steadyNow(this.runtime) - this.#began >= this.sliceMs
  }

  /** Resolves as the next turn begins (after the runtime's timers and I/O waiting now). */
  next(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    return (this.#next ??= new Promise<void>((resolve) => this.#after(() => {
      this.#next = undefined
      this.#begin()
      resolve()
    })))
  }

  /** Its owner closed: work still in flight finishes without slices, and no timer is set from now on. */
  close(): void {
    this.#closed = true
    for (const [timer, now] of this.#timers) {
      timer.cancel()
      now()
    }
    this.#timers.clear()
  }

  #begin(): void {
    if (this.#closed) return
    this.#began = steadyNow(this.runtime)
    const turn = ++this.#turn
    // Whatever runs after this turn's work comes after the event loop turned: a turn of its own.
    this.#after(() => {
      if (this.#turn === turn) this.#began = undefined
    })
  }

  #after(fn: () => void): void {
    const timer = this.runtime.setTimer(0, () => {
      this.#timers.delete(timer)
      fn()
    })
    this.#timers.set(timer, fn)
  }
}
