/**
 * The real Runtime: wall clock, host timers, crypto randomness and hashing. Works in Node and browsers.
 */
import type { Runtime } from "../../core/index.js"

const randomUnit = (): number => {
  const buf = new Uint32Array(1)
  globalThis.crypto.getRandomValues(buf)
  return buf[0]! / 4294967296
}

export const systemRuntime: Runtime = {
  now: () => Date.now(),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms)
    return { cancel: () => clearTimeout(t) }
  },
  random: randomUnit,
  randomBytes: (length) => globalThis.crypto.getRandomValues(new Uint8Array(length)),
  monotonic: () => performance.now(),
  // WebCrypto: in Node and in browsers on secure pages (https, localhost); elsewhere the
  // client makes a random id instead (core/ports/runtime.ts newClientIdentity).
  digest: async (data) => new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>)),
}
