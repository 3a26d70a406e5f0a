/**
 * The demo's machine: a board of columns and cards. Every edit is a command, so two people
 * moving the same card at once end in one order, and a move of a card someone just deleted
 * is rejected with a sentence the app can show.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"

export interface Card {
  title: string
  column: string
  /** Fractional position within its column (reordering never renumbers siblings). */
  position: number
  by: string
}

export interface BoardState {
  columns: string[]
  cards: Record<string, Card>
}

const Title = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))

export const Board = defineMachine({
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
