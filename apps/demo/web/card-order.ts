/**
 * The board's columns in order, kept up to date card by card: a change to one card costs
 * about log n comparisons (and a splice in a chunk of at most 2 * CHUNK cards), not a sort of
 * the whole board. The view (board-view.ts) draws from it; the order is positions.ts's, the
 * one every replica shows: by position (-Infinity first, then finite, then Infinity, NaN last),
 * ties by id.
 *
 * Which cards changed is found by comparing each card's column and position with the ones
 * kept here (`sync`): the document's view is one live object that commands change in place,
 * so neither its identity nor its cards' says what changed, and it does not list what did.
 * That pass reads two fields per card and compares nothing; only changed cards are placed.
 */
import type { Card } from "../board.js"
import { between } from "./positions.js"

/** A card's place as this index last saw it. */
export interface Entry {
  readonly id: string
  readonly column: string
  readonly position: number
}

/** Cards per chunk of a column, at most twice this. */
const CHUNK = 256

/** Board order (positions.ts, byPosition): NaN last, then by position, ties by id. */
export const compare = (a: Entry, b: Entry): number => {
  const an = a.position !== a.position
  const bn = b.position !== b.position
  if (an !== bn) return an ? 1 : -1
  const x = a.position
  const y = b.position
  if (!an && x !== y) return x < y ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** One column: its entries in order, in chunks (a change splices one chunk, not the column). */
export class OrderedColumn {
  readonly #chunks: Entry[][] = []
  #length = 0

  get length(): number {
    return this.#length
  }

  /** The chunk where `e` is or goes: the first whose last entry is not before it (else the last chunk). */
  #chunkOf(e: Entry): number {
    let lo = 0
    let hi = this.#chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const chunk = this.#chunks[mid]!
      if (compare(chunk[chunk.length - 1]!, e) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Where `e` is or goes in `chunk`. */
  static #at(chunk: readonly Entry[], e: Entry): number {
    let lo = 0
    let hi = chunk.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (compare(chunk[mid]!, e) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  insert(e: Entry): void {
    this.#length++
    if (this.#chunks.length === 0) {
      this.#chunks.push([e])
      return
    }
    const c = this.#chunkOf(e)
    const chunk = this.#chunks[c]!
    chunk.splice(OrderedColumn.#at(chunk, e), 0, e)
    if (chunk.length > 2 * CHUNK) this.#chunks.splice(c + 1, 0, chunk.splice(CHUNK))
  }

  /** Removes `e` (an entry of this column, as inserted). */
  remove(e: Entry): void {
    if (this.#chunks.length === 0) return
    const c = this.#chunkOf(e)
    const chunk = this.#chunks[c]!
    const i = OrderedColumn.#at(chunk, e)
    if (chunk[i]?.id !== e.id) return
    chunk.splice(i, 1)
    this.#length--
    if (chunk.length === 0) this.#chunks.splice(c, 1)
    // A run of removals leaves small chunks: a chunk joins its neighbour when both fit in one.
    else if (c + 1 < this.#chunks.length && chunk.length + this.#chunks[c + 1]!.length <= CHUNK) chunk.push(...this.#chunks.splice(c + 1, 1)[0]!)
  }

  /** The index of `e` in the column, or -1. */
  indexOf(e: Entry): number {
    if (this.#chunks.length === 0) return -1
    const c = this.#chunkOf(e)
    const chunk = this.#chunks[c]!
    const i = OrderedColumn.#at(chunk, e)
    if (chunk[i]?.id !== e.id) return -1
    let before = 0
    for (let k = 0; k < c; k++) before += this.#chunks[k]!.length
    return before + i
  }

  /** The entry at `index` (0 <= index < length). */
  at(index: number): Entry | undefined {
    let at = 0
    for (const chunk of this.#chunks) {
      if (index < at + chunk.length) return chunk[index - at]
      at += chunk.length
    }
    return undefined
  }

  /**
   * The index of the first entry `past` holds for (the length if none): `past` must be false
   * for a run of entries from the start and true for the rest (a boundary of the order).
   */
  search(past: (e: Entry) => boolean): number {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const chunk = this.#chunks[mid]!
      if (past(chunk[chunk.length - 1]!)) hi = mid
      else lo = mid + 1
    }
    let before = 0
    for (let k = 0; k < lo; k++) before += this.#chunks[k]!.length
    const chunk = this.#chunks[lo]
    if (chunk === undefined) return before
    let a = 0
    let b = chunk.length
    while (a < b) {
      const mid = (a + b) >> 1
      if (past(chunk[mid]!)) b = mid
      else a = mid + 1
    }
    return before + a
  }

  /** The ids at indices [start, end). */
  slice(start: number, end: number): string[] {
    const out: string[] = []
    let at = 0
    for (const chunk of this.#chunks) {
      if (at + chunk.length > start) {
        for (let i = Math.max(0, start - at); i < chunk.length && at + i < end; i++) out.push(chunk[i]!.id)
      }
      at += chunk.length
      if (at >= end) break
    }
    return out
  }
}

const samePlace = (e: Entry, card: Card): boolean =>
  e.column === card.column && (e.position === card.position || (e.position !== e.position && card.position !== card.position))

const EMPTY = new OrderedColumn()

/** Every column's cards in board order. */
export class CardOrder {
  readonly #entries = new Map<string, Entry>()
  readonly #columns = new Map<string, OrderedColumn>()

  /** The column's cards (an empty column has none). */
  column(name: string): OrderedColumn {
    return this.#columns.get(name) ?? EMPTY
  }

  /** Where card `id` is, as of the last sync. */
  place(id: string): { readonly column: string; readonly index: number } | undefined {
    const e = this.#entries.get(id)
    return e === undefined ? undefined : { column: e.column, index: this.column(e.column).indexOf(e) }
  }

  /**
   * The position that puts a card at `index` (an integer) among the other cards of `column`:
   * positions.ts's positionAt, the same number, from the order kept here (as of the last sync
   * or update) in about log n instead of a sort of the column. The order puts -Infinity first,
   * then finite positions, then Infinity and NaN, so the nearest finite neighbour on a side is
   * either the next card's own position or the first (last) finite one of the column.
   */
  positionAt(column: string, index: number, movingId?: string): number {
    const col = this.column(column)
    const moving = movingId === undefined ? undefined : this.#entries.get(movingId)
    const m = moving !== undefined && moving.column === column ? col.indexOf(moving) : -1
    const n = m < 0 ? col.length : col.length - 1
    const i = Math.max(0, Math.min(index, n))
    /** The k-th of the other cards (the moving one left out). */
    const other = (k: number): Entry => col.at(m >= 0 && k >= m ? k + 1 : k)!
    const finite = (e: Entry | undefined): number | undefined => (e !== undefined && Number.isFinite(e.position) ? e.position : undefined)
    let before: number | undefined
    if (i > 0) {
      const prev = other(i - 1)
      if (Number.isFinite(prev.position)) before = prev.position
      else if (prev.position !== -Infinity) {
        // Infinity or NaN: every finite card is earlier; the last of them (not the moving card).
        let last = col.search((e) => !(e.position < Infinity)) - 1
        if (last === m) last--
        before = last < 0 ? undefined : finite(col.at(last))
      }
    }
    let after: number | undefined
    if (i < n) {
      const next = other(i)
      if (Number.isFinite(next.position)) after = next.position
      else if (next.position === -Infinity) {
        // Every finite card is later: the first of them (not the moving card).
        let first = col.search((e) => e.position !== -Infinity)
        if (first === m) first++
        after = finite(col.at(first))
      }
    }
    return between(before, after)
  }

  /**
   * Brings the order up to `cards`: a card added, removed, or with another column or position
   * is placed again; the others are only compared with what was kept. Returns the ids changed.
   */
  sync(cards: Readonly<Record<string, Card>>): Set<string> {
    const changed = new Set<string>()
    let kept = 0
    // Reflect.ownKeys: the view's keys without a property descriptor each (Object.keys asks for one).
    for (const id of Reflect.ownKeys(cards)) {
      if (typeof id !== "string") continue
      const card = cards[id]!
      const e = this.#entries.get(id)
      if (e !== undefined) kept++
      if (e === undefined || !samePlace(e, card)) changed.add(id)
    }
    // Some card kept here is gone: find which (only then are they all looked up).
    if (kept < this.#entries.size) for (const id of this.#entries.keys()) if (!Object.hasOwn(cards, id)) changed.add(id)
    this.update(cards, changed)
    return changed
  }

  /** Places again the cards `ids` (each as `cards` has it now, or gone). */
  update(cards: Readonly<Record<string, Card>>, ids: Iterable<string>): void {
    for (const id of ids) {
      const old = this.#entries.get(id)
      if (old !== undefined) {
        this.column(old.column).remove(old)
        this.#entries.delete(id)
      }
      const card = Object.hasOwn(cards, id) ? cards[id] : undefined
      if (card === undefined) continue
      const e: Entry = { id, column: card.column, position: card.position }
      this.#entries.set(id, e)
      let col = this.#columns.get(e.column)
      if (col === undefined) this.#columns.set(e.column, (col = new OrderedColumn()))
      col.insert(e)
    }
  }
}
