/**
 * Client secrets (core/ports/runtime.ts `newClientSecret`): 32 bytes as base64url without
 * padding, 43 characters, from the runtime's strong randomness or, without it, from `random()`.
 * Known answers pin the encoding (a secret a client stored must read the same after an update).
 */
import { newClientSecret, type Runtime } from "../core/ports/runtime.js"

const runtimeWith = (random: () => number, randomBytes?: (n: number) => Uint8Array): Runtime =>
  ({ now: () => 0, setTimer: () => ({ cancel: () => {} }), random, ...(randomBytes !== undefined ? { randomBytes } : {}) }) as Runtime

test("a client secret is its 32 bytes as base64url without padding", () => {
  const counting = runtimeWith(() => 0, (n) => Uint8Array.from({ length: n }, (_, i) => i))
  expect(newClientSecret(counting)).toBe("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
  // Bytes whose standard base64 has "+" and "/": the URL-safe letters stand in for them.
  expect(newClientSecret(runtimeWith(() => 0, (n) => new Uint8Array(n).fill(0xfb)))).toBe("-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s")
})

test("without strong randomness, a secret's bytes come from random(): its edges included", () => {
  expect(newClientSecret(runtimeWith(() => 0.999_999_999))).toBe("__________________________________________8")
  expect(newClientSecret(runtimeWith(() => 0))).toBe("A".repeat(43))
  expect(newClientSecret(runtimeWith(() => 0.5))).toMatch(/^[A-Za-z0-9_-]{43}$/)
})
