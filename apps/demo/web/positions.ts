/**
 * Card order: each card has a fractional position within its column, so putting a card
 * between two others changes only that card (one command), never its siblings. Ties (two
 * people dropping at the same spot) are broken by card id, the same on every replica.
 */
import type { BoardState, Card } from "../board.js"

export type Placed = readonly [id: string, card: Card]

/** The cards of `column`, in board order. */
export const cardsIn = (state: BoardState, column: string): Placed[] =>
  Object.entries(state.cards)
    .filter(([, c]) => c.column === column)
    .sort(([ia, a], [ib, b]) => a.position - b.position || (ia < ib ? -1 : ia > ib ? 1 : 0))

/** A position strictly between two neighbours (either may be missing). */
export const between = (before: number | undefined, after: number | undefined): number => {
  if (before === undefined && after === undefined) return 1
  if (before === undefined) return after! - 1
  if (after === undefined) return before + 1
  return before + (after - before) / 2
}

/** The position that puts a card at `index` among the other cards of `column`. */
export const positionAt = (state: BoardState, column: string, index: number, movingId?: string): number => {
  const others = cardsIn(state, column).filter(([id]) => id !== movingId)
  const i = Math.max(0, Math.min(index, others.length))
  return between(others[i - 1]?.[1].position, others[i]?.[1].position)
}

/** Where a card is: its column and its index among the column's cards. */
export const locate = (state: BoardState, id: string): { column: string; index: number } | undefined => {
  const card = state.cards[id]
  if (card === undefined) return undefined
  return { column: card.column, index: cardsIn(state, card.column).findIndex(([cid]) => cid === id) }
}
