/**
 * Strings of any UTF-16 code units, lone surrogates included: what app code can make of user
 * text (`s.slice(0, n)` through an emoji) and what fast-check's "binary" unit never gives (it
 * draws whole code points).
 */
import fc from "fast-check"

/** One unit: a whole code point, or half of a pair on its own. */
const unit = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
)

export const codeUnitStrings = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit, maxLength })
