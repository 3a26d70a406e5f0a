/**
 * A virtual clock and timer queue, seeded: the simulator's Runtime. Nothing happens until
 * `run` advances time; events at the same instant fire in the order they were scheduled, and
 * every microtask they start settles before the next event. Same seed, same run.
 */
import { type Runtime, type Timer } from "../../core/index.js"
import { seededRandom, sha256 } from "../../core/internal.js"

interface Event {
  readonly at: number
  readonly id: number
  fn: (() => void) | undefined
}

const before = (a: Event, b: Event): boolean => a.at < b.at || (a.at === b.at && a.id < b.id)

/** Lets every pending microtask run (a macrotask boundary). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

export class VirtualRuntime implements Runtime {
  private time: number
  private nextId = 0
  private heap: Event[] = []
  readonly random: () => number

  constructor(seed: number, startTime = 1_700_000_000_000) {
    this.time = startTime
    this.random = seededRandom(seed)
  }

  now(): number {
    return this.time
  }

  /** SHA-256, computed at once (a promise already settled: no outside timing enters the run). */
  digest(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(sha256(data))
  }

  setTimer(ms: number, fn: () => void): Timer {
    const ev: Event = { at: this.time + Math.max(0, ms), id: this.nextId++, fn }
    this.push(ev)
    return { cancel: () => { ev.fn = undefined } }
  }

  /** Number of scheduled events (including cancelled ones not yet reached). */
  get queued(): number {
    return this.heap.length
  }

  /** Timers set and neither fired nor cancelled: after everything is closed, there should be none. */
  get armed(): number {
    let n = 0
    for (const ev of this.heap) if (ev.fn !== undefined) n++
    return n
  }

  /**
   * Runs events in time order until `until` (virtual ms since now), no event is left, or
   * `maxEvents` ran. Returns the number of events run.
   */
  async run(options: { readonly forMs?: number; readonly maxEvents?: number; readonly until?: () => boolean } = {}): Promise<number> {
    const end = options.forMs === undefined ? Infinity : this.time + options.forMs
    const max = options.maxEvents ?? Infinity
    let n = 0
    await settle()
    while (this.heap.length > 0 && n < max) {
      if (options.until?.()) break
      const top = this.heap[0]!
      if (top.at > end) break
      this.pop()
      if (top.fn === undefined) continue
      this.time = top.at
      const fn = top.fn
      top.fn = undefined
      fn()
      n++
      await settle()
    }
    if (end !== Infinity && this.time < end && !(options.until?.())) this.time = end
    return n
  }

  private push(ev: Event): void {
    const h = this.heap
    h.push(ev)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  private pop(): void {
    const h = this.heap
    const last = h.pop()!
    if (h.length === 0) return
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && before(h[l]!, h[m]!)) m = l
      if (r < h.length && before(h[r]!, h[m]!)) m = r
      if (m === i) break
      ;[h[i], h[m]] = [h[m]!, h[i]!]
      i = m
    }
  }
}
