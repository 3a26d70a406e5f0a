/**
 * The Runtime port: the engine's only access to time, timers and randomness, so a
 * deterministic simulator can drive it. `adapters/system` gives the real one;
 * `adapters/memory` a virtual, seeded one.
 */
import { clientIdOfDigest, clientIdPreimage } from "../client-id.js"

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
  /**
   * Cryptographically strong random bytes, for client secrets. The system runtime uses the
   * platform's CSPRNG; without it, secrets come from `random()` (fine for a simulation, not
   * for production).
   */
  randomBytes?(length: number): Uint8Array
  /**
   * Milliseconds on a clock that never steps (fractional), for measuring how long work took;
   * the wall clock of `now` may jump (NTP, a resumed laptop). The system runtime uses
   * `performance.now()`; without it, durations are measured on `now`.
   */
  monotonic?(): number
  /**
   * SHA-256 of `data`, for the client id a new client derives from its secret
   * (core/client-id.ts). The system runtime uses WebCrypto; without it (or where the platform
   * has none), new clients get random ids, which a hub trusts at first contact.
   */
  digest?(data: Uint8Array): Promise<Uint8Array>
}

/**
 * Milliseconds for measuring durations and pacing: the runtime's clock that never steps, else
 * its wall clock. A wall clock stepped back (NTP, a resumed VM) must not put a rate bucket an
 * hour into debt or push a pacing deadline an hour away.
 */
export const steadyNow = (runtime: Pick<Runtime, "now" | "monotonic">): number => runtime.monotonic?.() ?? runtime.now()

/** A deadline's timer that ran this much late or more was held up (a stalled process, a throttled tab). */
export const LATE_TIMER_MS = 250

/**
 * A timer for a deadline that judges a peer by something not having arrived (a hello, a pong).
 * If it runs late, the process was busy, and what it waits for may have arrived meanwhile and
 * still be unread (timers run before sockets are read): it looks once more LATE_TIMER_MS later
 * before calling `expired`. On time, or on a virtual clock, it is `setTimer`.
 *
 * @example
 * ```ts
 * session.deadline = setDeadline(runtime, 10_000, () => { if (!session.saidHello) drop(session) })
 * // later: session.deadline.cancel()
 * ```
 */
export const setDeadline = (runtime: Pick<Runtime, "now" | "setTimer">, ms: number, expired: () => void): Timer => {
  const due = runtime.now() + ms
  let timer = runtime.setTimer(ms, () => {
    if (runtime.now() - due < LATE_TIMER_MS) return expired()
    timer = runtime.setTimer(LATE_TIMER_MS, expired)
  })
  return { cancel: () => timer.cancel() }
}

/**
 * A new client's id and secret: the secret from the runtime's strong randomness and the id
 * derived from it (self-certifying, core/client-id.ts) when the runtime can hash, else a
 * random id.
 */
export const newClientIdentity = async (runtime: Runtime): Promise<{ readonly clientId: string; readonly secret: string }> => {
  const secret = newClientSecret(runtime)
  let digest: Uint8Array | undefined
  try {
    digest = await runtime.digest?.(clientIdPreimage(secret))
  } catch {
    // No hashing here after all (WebCrypto outside a secure context): a random id still works.
  }
  return { clientId: digest === undefined ? newClientId(runtime) : clientIdOfDigest(digest), secret }
}

/**
 * A client id from the runtime's randomness: 16 base-36 characters (about 82 bits). A hub
 * trusts such an id at first contact; new clients get one derived from their secret instead
 * (`newClientIdentity`).
 */
export const newClientId = (runtime: Runtime): string => {
  let id = ""
  for (let i = 0; i < 16; i++) id += Math.floor(runtime.random() * 36).toString(36)
  return id
}

/** A client secret: 32 random bytes as base64url (43 characters). */
export const newClientSecret = (runtime: Runtime): string => {
  let bytes = runtime.randomBytes?.(32)
  if (bytes === undefined) {
    bytes = new Uint8Array(32)
    for (let i = 0; i < 32; i++) bytes[i] = Math.floor(runtime.random() * 256)
  }
  // base64url without padding (btoa is in every browser and in Node since 16).
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_")
}
