/**
 * Version 1 of the demo's board machine, as first released: never change it. Its fingerprint
 * is what v1 apps, stored boards and old outboxes hold; version 2 is declared on it with
 * `evolve` (board.ts). A module of its own so that board.ts exports only the machines a hub
 * serves (`canon serve --machines apps/demo/board.ts` takes every exported machine).
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"

export interface Card {
  title: string
  column: string
  /** Fractional position within its column (reordering never renumbers siblings). */
  position: number
  by: string
  /** v2: 0 none, 1 low, 2 medium, 3 high. Absent on cards never given one. */
  priority?: number
}

export interface BoardState {
  columns: string[]
  cards: Record<string, Card>
}

const Title = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))

/** Version 1, as first released: never change it (its fingerprint is what v1 apps and stored boards hold). */
export const BoardV1 = defineMachine({
  name: "board",
  version: 1,
  initial: (): BoardState => ({ columns: ["To do", "Doing", "Done"], cards: {} }),
  commands: {
    addCard: {
      args: Schema.Struct({ id: Schema.String, title: Title, column: Schema.String, position: Schema.Number }),
      apply: (s, a, ctx) => {
        if (s.cards[a.id]) ctx.reject("That card already exists.")
        if (!s.columns.includes(a.column)) ctx.reject(`There is no column "${a.column}".`)
        s.cards[a.id] = { title: a.title, column: a.column, position: a.position, by: ctx.clientId }
      },
    },
    renameCard: {
      args: Schema.Struct({ id: Schema.String, title: Title }),
      apply: (s, a, ctx) => {
        const card = s.cards[a.id] ?? ctx.reject("This card was deleted by someone else.")
        card.title = a.title
      },
    },
    moveCard: {
      args: Schema.Struct({ id: Schema.String, column: Schema.String, position: Schema.Number }),
      apply: (s, a, ctx) => {
        const card = s.cards[a.id] ?? ctx.reject("This card was deleted by someone else.")
        if (!s.columns.includes(a.column)) ctx.reject(`There is no column "${a.column}".`)
        card.column = a.column
        card.position = a.position
      },
    },
    /** Many cards at once (the devtools' "load 20,000 cards"): one command per 1,000. */
    addCards: {
      args: Schema.Struct({ cards: Schema.Array(Schema.Struct({ id: Schema.String, title: Title, column: Schema.String, position: Schema.Number })) }),
      apply: (s, a, ctx) => {
        if (a.cards.length > 1000) ctx.reject("At most 1,000 cards at once.")
        for (const c of a.cards) {
          if (s.cards[c.id]) ctx.reject(`A card ${c.id} already exists.`)
          if (!s.columns.includes(c.column)) ctx.reject(`There is no column "${c.column}".`)
          s.cards[c.id] = { title: c.title, column: c.column, position: c.position, by: ctx.clientId }
        }
      },
    },
    deleteCard: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (s, a, ctx) => {
        if (!s.cards[a.id]) ctx.reject("This card was already deleted.")
        delete s.cards[a.id]
      },
    },
  },
})
