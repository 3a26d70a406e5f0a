/**
 * The demo board's card order (apps/demo/web/positions.ts) against positions any peer can
 * store (the machine takes any number: NaN, infinities, the ends of the range): every
 * replica orders a column the same way whatever order it holds the cards in, and a card
 * placed by the app always gets a finite position between its finite neighbours, so a
 * hostile position never spreads to the cards placed next to it.
 */
import fc from "fast-check"
import type { BoardState, Card } from "../apps/demo/board.js"
import { cardsIn, columnsOf, positionAt } from "../apps/demo/web/positions.js"

const position = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, Number.MAX_VALUE, -Number.MAX_VALUE, 0, -0, 1, 1 + Number.EPSILON),
)

const board = fc.array(fc.tuple(fc.constantFrom("a", "b", "c", "d", "e", "f", "g"), position, fc.constantFrom("todo", "done")), { maxLength: 12 })
  .map((cards): BoardState => ({
    columns: ["todo", "done"],
    cards: Object.fromEntries(cards.map(([id, p, column]): [string, Card] => [id, { title: id, column, position: p, by: "x" }])),
  }))

/** The same cards, held in another key order (as a replica that received them differently). */
const reordered = (s: BoardState, seed: number): BoardState => {
  const entries = Object.entries(s.cards)
  for (let i = entries.length - 1; i > 0; i--) {
    const j = (seed * (i + 7)) % (i + 1)
    ;[entries[i], entries[j]] = [entries[j]!, entries[i]!]
  }
  return { ...s, cards: Object.fromEntries(entries) }
}

test("property: a column's order does not depend on the order a replica holds its cards in", () => {
  fc.assert(
    fc.property(board, fc.nat(1000), (s, seed) => {
      expect(cardsIn(reordered(s, seed), "todo").map(([id]) => id)).toEqual(cardsIn(s, "todo").map(([id]) => id))
    }),
    { seed: 3, numRuns: 500 },
  )
})

test("property: columnsOf orders every column in one pass as cardsIn orders each", () => {
  fc.assert(
    fc.property(board, fc.nat(1000), (s, seed) => {
      const columns = columnsOf(reordered(s, seed))
      for (const column of s.columns) expect(columns.get(column) ?? []).toEqual(cardsIn(s, column))
      expect([...columns.keys()].every((c) => s.columns.includes(c))).toBe(true)
    }),
    { seed: 5, numRuns: 500 },
  )
})

test("property: a placed card gets a finite position, between its finite neighbours, and lands there", () => {
  fc.assert(
    fc.property(board, fc.nat(12), (s, at) => {
      const p = positionAt(s, "todo", at)
      expect(Number.isFinite(p)).toBe(true)
      const placed = { ...s, cards: { ...s.cards, zz: { title: "new", column: "todo", position: p, by: "me" } } }
      const order = cardsIn(placed, "todo")
      const k = order.findIndex(([id]) => id === "zz")
      // Its finite neighbours in the new order bracket it.
      const before = order.slice(0, k).map(([, c]) => c.position).filter(Number.isFinite)
      const after = order.slice(k + 1).map(([, c]) => c.position).filter(Number.isFinite)
      if (before.length > 0) expect(before.at(-1)!).toBeLessThanOrEqual(p)
      if (after.length > 0) expect(after[0]!).toBeGreaterThanOrEqual(p)
    }),
    { seed: 4, numRuns: 500 },
  )
})

test("-Infinity sorts first, Infinity and NaN last (NaN after Infinity), and cards dropped next to them get finite ones", () => {
  const s: BoardState = {
    columns: ["todo"],
    cards: {
      n: { title: "n", column: "todo", position: Number.NaN, by: "x" },
      i: { title: "i", column: "todo", position: Infinity, by: "x" },
      m: { title: "m", column: "todo", position: -Infinity, by: "x" },
      a: { title: "a", column: "todo", position: 1, by: "x" },
    },
  }
  expect(cardsIn(s, "todo").map(([id]) => id)).toEqual(["m", "a", "i", "n"])
  // Before m or between m and a: just before a (m's -Infinity is no neighbour); after a: past it.
  expect([0, 1, 2, 3, 4].map((i) => positionAt(s, "todo", i))).toEqual([0, 0, 2, 2, 2])
})
