/**
 * Machines the benchmarks run, defined here so bench/ depends only on the public engine
 * (core/index.ts), not on test/ helpers that may change for testing reasons.
 *
 * - `Counter`: the smallest command there is (`incr {by}`), for throughput figures.
 * - `Board`: keyed items (`{ items: Record<string, {title, n}> }`) that can be pre-filled
 *   with any number of items, for figures that must not depend on the size of the state.
 */
import { Schema } from "effect"
import { defineMachine } from "../core/index.js"

export const Counter = defineMachine({
  name: "bench-counter",
  version: 1,
  initial: () => ({ value: 0 }),
  commands: {
    incr: { args: Schema.Struct({ by: Schema.Number }), apply: (s, a) => {
      s.value += a.by
    } },
  },
})

export interface BoardItem {
  title: string
  n: number
}

export interface BoardState {
  items: Record<string, BoardItem>
}

export const Board = defineMachine({
  name: "bench-board",
  version: 1,
  initial: (): BoardState => ({ items: {} }),
  commands: {
    rename: { args: Schema.Struct({ id: Schema.String, title: Schema.String }), apply: (s, a, ctx) => {
      const item = s.items[a.id]
      if (item === undefined) return ctx.reject(`No item ${a.id}.`)
      item.title = a.title
      item.n++
    } },
  },
})

/** Item ids `i0` .. `i{count-1}`. */
export const itemId = (i: number): string => `i${i}`

/** A board state holding `count` items, built directly (no commands). */
export const boardWith = (count: number): BoardState => {
  const items: Record<string, BoardItem> = {}
  for (let i = 0; i < count; i++) items[itemId(i)] = { title: `item ${i}`, n: 0 }
  return { items }
}
