/**
 * Running a VirtualRuntime from a test: let virtual time pass, or await a promise whose work
 * happens on the runtime's timers (a store with latency, a network with delays).
 */
import type { VirtualRuntime } from "../../adapters/memory/index.js"

/** Runs `ms` of virtual time in 50 ms steps. */
export const settle = async (rt: VirtualRuntime, ms = 3000): Promise<void> => {
  for (let t = 0; t < ms; t += 50) await rt.run({ forMs: 50 })
}

/**
 * Runs `ms` of virtual time in 10 ms steps with a macrotask turn after each, for work that
 * waits on real event-loop turns too (CRDT libraries' own promises, setImmediate).
 */
export const settleWithTurns = async (rt: VirtualRuntime, ms: number): Promise<void> => {
  for (let i = 0; i < ms / 10; i++) {
    await rt.run({ forMs: 10 })
    await new Promise((r) => setImmediate(r))
  }
}

/** Awaits `p` while virtual time runs (bounded: 10 s of virtual time). */
export const running = async <T>(rt: VirtualRuntime, p: Promise<T>): Promise<T> => {
  let done = false
  // Not `finally`: its promise rejects with `p`, unhandled.
  p.then(() => { done = true }, () => { done = true })
  for (let t = 0; t < 10_000 && !done; t += 10) await rt.run({ forMs: 10 })
  return p
}
