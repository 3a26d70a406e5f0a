/**
 * Turns of the event loop, shared by a hub's documents: work that goes on without waiting for
 * I/O (judging commands, replaying a log) runs in slices of `sliceMs` of the runtime's steady
 * clock, whichever documents do it, and then lets the event loop turn.
 *
 * Each document slicing on its own clock is not enough: the first slices of a hundred
 * documents run back to back (their submits arrived in one read), and the timers their next
 * slices wait on fire in one phase of the event loop: seconds without reading a socket. Nor is
 * letting every document waiting for a turn go at once, each with one piece of work: a
 * hundred documents with one 20 ms command each held the loop 2 s. Here the slice is the
 * hub's, and waiters go one at a time, in the order they came: the first of a turn holds its
 * grant (one piece of work, however the turn goes, so none is starved); the next goes once the
 * one before it has done its synchronous part, while the turn has room, and asks `over` before
 * each piece, its first included. A turn is then at most the slice, one piece past it, and the
 * grant.
 *
 * @example
 * ```ts
 * const turns = new Turns(runtime, 50)
 * let granted = false
 * for (const e of entries) {
 *   while (!granted && turns.over()) granted = await turns.next()
 *   apply(e)
 *   granted = false
 * }
 * ```
 */
import { steadyNow, type Runtime, type Timer } from "../ports/runtime.js"

export class Turns {
  /** When the current turn began (steady ms), if work began in it. */
  #began: number | undefined
  /** Turns begun: a timer ending the turn it was set in leaves a later one alone. */
  #turn = 0
  /** Who waits for a turn, in the order they came. */
  readonly #waiting: Array<(granted: boolean) => void> = []
  /** A turn for the waiters is on its way (its timer is set). */
  #armed = false
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

  /**
   * Resolves in a later turn, after those who came to wait before: true for the first of that
   * turn (its grant: one piece of work whatever `over` says), false for one let go after it
   * while the turn had room (it asks `over` before each piece).
   */
  next(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(true)
    return new Promise<boolean>((resolve) => {
      this.#waiting.push(resolve)
      this.#arm()
    })
  }

  /** Its owner closed: waiters go at once, work still in flight finishes unsliced, and no timer is set from now on. */
  close(): void {
    this.#closed = true
    for (const [timer, now] of this.#timers) {
      timer.cancel()
      now()
    }
    this.#timers.clear()
    for (const go of this.#waiting.splice(0)) go(true)
  }

  #arm(): void {
    if (this.#armed) return
    this.#armed = true
    this.#after(() => {
      this.#armed = false
      this.#begin()
      this.#letGo(true)
    })
  }

  /** The first waiter goes; the next once that one's synchronous part is done, while the turn has room. */
  #letGo(granted: boolean): void {
    const go = this.#waiting.shift()
    if (go === undefined) return
    go(granted)
    queueMicrotask(() => {
      if (this.#closed || this.#waiting.length === 0) return
      if (this.over()) this.#arm()
      else this.#letGo(false)
    })
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

/**
 * The pause before each piece of work sliced in `turns`, for code that asks between pieces
 * (a decoder): undefined while the turn has room, else the promise of the turn the next piece
 * may run in (the loop of the example above, as a function).
 */
export const pauseIn = (turns: Turns): (() => Promise<void> | undefined) =>
  () => (turns.over() ? (async () => { while (!(await turns.next()) && turns.over()); })() : undefined)
