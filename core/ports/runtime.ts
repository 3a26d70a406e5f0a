/**
 * The Runtime port: the engine's only access to time, timers and randomness, so a
 * deterministic simulator can drive it. `adapters/system` gives the real one;
 * `adapters/memory` a virtual, seeded one.
 */
export interface Timer {
  cancel(): void
}

export interface Runtime {
  /** Milliseconds since the epoch. */
  now(): number
  /** Calls `fn` once after `ms` milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): Timer
  /** Uniform in [0, 1): backoff jitter and new client ids; never used by commands. */
  random(): number
}

/** A client id from the runtime's randomness: 16 base-36 characters (about 82 bits). */
export const newClientId = (runtime: Runtime): string => {
  let id = ""
  for (let i = 0; i < 16; i++) id += Math.floor(runtime.random() * 36).toString(36)
  return id
}
