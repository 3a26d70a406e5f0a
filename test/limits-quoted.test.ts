/**
 * What the hub quotes back of a peer's strings is bounded (core/limits.ts `quoted`), and cuts
 * never split a surrogate pair: a lone half has no UTF-8 form, so the codec would refuse the
 * error and the hub would drop the connection instead of answering.
 */
import { MAX_MESSAGE_CHARS, MAX_QUOTED_CHARS, boundedMessage, quoted } from "../core/limits.js"
import fc from "fast-check"
import { wellFormed } from "../core/bytes.js"
import { codeUnitStrings } from "./support/code-units.js"

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

test("a lone surrogate anywhere in the text is replaced by U+FFFD, at any length", () => {
  // Half an emoji: what `title.slice(0, 10)` leaves of "123456789😀", or a V8 error quoting input.
  const half = "123456789😀".slice(0, 10)
  expect(boundedMessage(`Title "${half}…" is too long.`)).toBe(`Title "123456789\uFFFD…" is too long.`)
  expect(quoted(half)).toBe(`"123456789\uFFFD"`)
  expect(quoted("\uDE00x")).toBe(`"\uFFFDx"`)
  expect(boundedMessage(`${"\uDE00".repeat(3)}${"e".repeat(MAX_MESSAGE_CHARS)}`).startsWith("\uFFFD\uFFFD\uFFFDe")).toBe(true)
  expect(quoted(`\uD83D${"f".repeat(MAX_QUOTED_CHARS * 2)}`).startsWith(`"\uFFFDf`)).toBe(true)
})

test("property: boundedMessage and quoted give well-formed text within their bounds, and keep well-formed text as it is", () => {
  fc.assert(
    fc.property(codeUnitStrings(1100), (s) => {
      const m = boundedMessage(s)
      expect(wellFormed(m)).toBe(true)
      expect(m.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS)
      if (s.length <= MAX_MESSAGE_CHARS && wellFormed(s)) expect(m).toBe(s)
      const q = quoted(s)
      expect(wellFormed(q)).toBe(true)
      if (s.length <= MAX_QUOTED_CHARS && wellFormed(s)) expect(q).toBe(`"${s}"`)
    }),
    { numRuns: 500 },
  )
})
