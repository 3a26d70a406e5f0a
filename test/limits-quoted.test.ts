/**
 * What the hub quotes back of a peer's strings is bounded (core/limits.ts `quoted`), and cuts
 * never split a surrogate pair: a lone half has no UTF-8 form, so the codec would refuse the
 * error and the hub would drop the connection instead of answering.
 */
import { MAX_MESSAGE_CHARS, MAX_QUOTED_CHARS, boundedMessage, quoted } from "../core/limits.js"
import { wellFormed } from "../core/bytes.js"

test("a short string is quoted whole; a long one by its start and its length", () => {
  expect(quoted("todo")).toBe(`"todo"`)
  expect(quoted("x".repeat(MAX_QUOTED_CHARS))).toBe(`"${"x".repeat(MAX_QUOTED_CHARS)}"`)
  const long = quoted("y".repeat(900_000))
  expect(long).toBe(`"${"y".repeat(MAX_QUOTED_CHARS)}…" (900000 characters)`)
})

test("cuts keep surrogate pairs whole", () => {
  const q = quoted(`${"a".repeat(MAX_QUOTED_CHARS - 1)}😀${"b".repeat(10)}`)
  expect(wellFormed(q)).toBe(true)
  expect(q.startsWith(`"${"a".repeat(MAX_QUOTED_CHARS - 1)}…"`)).toBe(true)
  const m = boundedMessage(`${"c".repeat(MAX_MESSAGE_CHARS - 2)}😀${"d".repeat(10)}`)
  expect(wellFormed(m)).toBe(true)
  expect(m.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS)
})
