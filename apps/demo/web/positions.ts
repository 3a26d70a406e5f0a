/**
 * Card order: each card has a fractional position within its column, so putting a card
 * between two others changes only that card (one command), never its siblings. Ties (two
 * people dropping at the same spot) are broken by card id, the same on every replica.
 */
import type { BoardState, Card } from "../board.js"

export type Placed = readonly [id: string, card: Card]

/**
 * A position as the board orders it. The machine takes any number, so a peer may have stored
 * NaN or an infinity: -Infinity sorts first, Infinity after every finite position and NaN
 * last, a total order, so every replica shows the same column and no comparison is ever NaN.
 */
const rank = (p: number): number => (p === p ? p : Infinity)

/** Board order within a column: by position (see `rank`), ties by id. */
const byPosition = ([ia, a]: Placed, [ib, b]: Placed): number => {
  const x = rank(a.position)
  const y = rank(b.position)
  const nan = Number(a.position !== a.position) - Number(b.position !== b.position)
  return nan || (x < y ? -1 : x > y ? 1 : ia < ib ? -1 : ia > ib ? 1 : 0)
}

/** The cards of `column`, in board order. */
export const cardsIn = (state: BoardState, column: string): Placed[] =>
  Object.entries(state.cards)
    .filter(([, c]) => c.column === column)
    .sort(byPosition)

/**
 * Every column's cards, in board order (each as `cardsIn` gives it), in one pass over the
 * cards: what drawing the whole board needs. Columns without cards are absent.
 */
export const columnsOf = (state: BoardState): Map<string, Placed[]> => {
  const out = new Map<string, Placed[]>()
  for (const placed of Object.entries(state.cards)) {
    const list = out.get(placed[1].column)
    if (list === undefined) out.set(placed[1].column, [placed])
    else list.push(placed)
  }
  for (const list of out.values()) list.sort(byPosition)
  return out
}

/**
 * A finite position strictly between two neighbours where there is room (either may be
 * missing; one that is not finite counts as missing, so a position is never derived from it).
 */
export const between = (before: number | undefined, after: number | undefined): number => {
  const lo = before !== undefined && Number.isFinite(before) ? before : undefined
  const hi = after !== undefined && Number.isFinite(after) ? after : undefined
  // Near the ends of the range a step past a neighbour overflows: then the neighbour's own (ties go by id).
  if (lo === undefined) return hi === undefined ? 1 : Number.isFinite(hi - 1) ? hi - 1 : hi
  if (hi === undefined) return Number.isFinite(lo + 1) ? lo + 1 : lo
  const mid = lo + (hi - lo) / 2
  // Neighbours far apart (hi - lo overflows): halving each first cannot.
  return Number.isFinite(mid) ? mid : lo / 2 + hi / 2
}

/** The position that puts a card at `index` among the other cards of `column`. */
export const positionAt = (state: BoardState, column: string, index: number, movingId?: string): number => {
  const others = cardsIn(state, column).filter(([id]) => id !== movingId).map(([, c]) => c.position)
  const i = Math.max(0, Math.min(index, others.length))
  // The nearest finite neighbours: cards a peer gave no finite position keep theirs, last.
  let before: number | undefined
  for (let k = i - 1; k >= 0 && before === undefined; k--) if (Number.isFinite(others[k])) before = others[k]
  return between(before, others.slice(i).find((p) => Number.isFinite(p)))
}

/** Where a card is: its column and its index among the column's cards. */
export const locate = (state: BoardState, id: string): { column: string; index: number } | undefined => {
  const card = state.cards[id]
  if (card === undefined) return undefined
  return { column: card.column, index: cardsIn(state, card.column).findIndex(([cid]) => cid === id) }
}
