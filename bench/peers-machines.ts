/**
 * The Canon machines the `peers` suite runs against Yjs and Automerge (bench/peers.ts).
 *
 * - `BoardMachine`: cards with a title, in ordered columns (`columns[col]` is an array of card
 *   ids, the same shape as the Yjs Y.Array and the Automerge list the peers use); commands
 *   add / rename / move / delete, refused when the card is missing.
 * - `TextMachine`: one text, edited by `edit {pos, del, ins}` (positions in UTF-16 units; the
 *   trace is all BMP, so they equal its code points). The state is an array of chunks of at
 *   most CHUNK_MAX characters, not one string: a string state makes each edit copy the whole
 *   text (V8 flattens the rope on the next slice), O(length) per keystroke, which is not what a
 *   text type does (Yjs keeps a linked list of items, Automerge a B-tree), so it would measure
 *   a naive machine rather than Canon. With chunks an edit touches one chunk: one recorded
 *   write in the journal (a string replacement), plus a splice of the chunk array when a chunk
 *   splits or empties. Finding the chunk is a scan of the chunk lengths (~100 for this trace).
 * - The counter workload uses bench/machines.ts `Counter` (`incr {by}`).
 */
import { Schema } from "effect"
import { defineMachine } from "../core/index.js"

export interface Card {
  title: string
  col: string
}

export interface BoardState {
  cards: Record<string, Card>
  columns: Record<string, string[]>
}

export const COLUMNS = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"] as const

const emptyBoard = (): BoardState => {
  const columns: Record<string, string[]> = {}
  for (const c of COLUMNS) columns[c] = []
  return { cards: {}, columns }
}

export const BoardMachine = defineMachine({
  name: "peers-board",
  version: 1,
  initial: emptyBoard,
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, col: Schema.String, pos: Schema.Number, title: Schema.String }),
      apply: (s, a, ctx) => {
        const column = s.columns[a.col]
        if (column === undefined) return ctx.reject(`No column ${a.col}.`)
        if (s.cards[a.id] !== undefined) return ctx.reject(`Card ${a.id} exists.`)
        s.cards[a.id] = { title: a.title, col: a.col }
        column.splice(Math.min(a.pos, column.length), 0, a.id)
      },
    },
    rename: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (s, a, ctx) => {
        const card = s.cards[a.id]
        if (card === undefined) return ctx.reject(`No card ${a.id}.`)
        card.title = a.title
      },
    },
    move: {
      args: Schema.Struct({ id: Schema.String, col: Schema.String, pos: Schema.Number }),
      apply: (s, a, ctx) => {
        const card = s.cards[a.id]
        const to = s.columns[a.col]
        if (card === undefined || to === undefined) return ctx.reject(`No card ${a.id} or column ${a.col}.`)
        const from = s.columns[card.col]!
        from.splice(from.indexOf(a.id), 1)
        to.splice(Math.min(a.pos, to.length), 0, a.id)
        card.col = a.col
      },
    },
    delete: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (s, a, ctx) => {
        const card = s.cards[a.id]
        if (card === undefined) return ctx.reject(`No card ${a.id}.`)
        const from = s.columns[card.col]!
        from.splice(from.indexOf(a.id), 1)
        delete s.cards[a.id]
      },
    },
  },
})

/** Chunks split above this many characters (into two halves). */
export const CHUNK_MAX = 2048

export interface TextState {
  chunks: string[]
}

/** The text a TextState holds. */
export const textOf = (s: TextState): string => s.chunks.join("")

/**
 * Applies one edit to an array of chunks, in place; false if it does not fit the text. Used by
 * TextMachine on its (journaled) state, and on a plain array to know a trace prefix's text.
 */
export const editChunks = (chunks: string[], at: number, deleting: number, ins: string): boolean => {
  const n = chunks.length
  let pos = at
  let del = deleting
  let i = 0
  // The chunk holding `pos` (an insert at a chunk boundary goes to the earlier chunk).
  for (; i < n; i++) {
    const len = chunks[i]!.length
    if (pos < len || (pos === len && (del === 0 || i === n - 1))) break
    pos -= len
  }
  if (i === n) {
    if (pos !== 0 || del > 0) return false
    if (ins.length > 0) chunks.push(ins)
    return true
  }
  // Delete across as many chunks as it takes, then insert into the first one.
  const first = chunks[i]!
  const head = first.slice(0, pos)
  let tail = first.slice(pos)
  let j = i
  while (del > tail.length && j + 1 < n) {
    del -= tail.length
    tail = chunks[++j]!
  }
  if (del > tail.length) return false
  const merged = head + ins + tail.slice(del)
  if (j > i) chunks.splice(i + 1, j - i)
  if (merged.length === 0) chunks.splice(i, 1)
  else if (merged.length > CHUNK_MAX) {
    const half = merged.length >> 1
    chunks.splice(i, 1, merged.slice(0, half), merged.slice(half))
  } else chunks[i] = merged
  return true
}

export const TextMachine = defineMachine({
  name: "peers-text",
  version: 1,
  initial: (): TextState => ({ chunks: [] }),
  commands: {
    edit: {
      args: Schema.Struct({ pos: Schema.Number, del: Schema.Number, ins: Schema.String }),
      apply: (s, a, ctx) => {
        if (!editChunks(s.chunks, a.pos, a.del, a.ins)) ctx.reject(`Edit at ${a.pos} (delete ${a.del}) does not fit the text.`)
      },
    },
  },
})
