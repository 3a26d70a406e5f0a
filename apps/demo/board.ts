/**
 * The demo's machines. The board: columns and cards. Every edit is a command, so two people
 * moving the same card at once end in one order, and a move of a card someone just deleted
 * is rejected with a sentence the app can show.
 *
 * Two versions of the board: v1 (the first release, kept as it was: stored boards, old tabs
 * and old outboxes are v1) and v2, declared on it with `evolve`, which adds a card priority.
 * A v1 tab beside a v2 tab follows the board through downcasts (every v1 command is
 * unchanged) until someone sets a priority, which v1 cannot show: that tab is told
 * "update required" and keeps its changes for the v2 app.
 *
 * A card's description is its own machine (`CardText`, card-text.ts), kept out of this
 * module so that the browser loads Yjs only when a description is opened.
 */
import * as Schema from "effect/Schema"
import { evolve } from "../../core/schema/index.js"
import { BoardV1, type BoardState } from "./board-v1.js"

export type { BoardState, Card } from "./board-v1.js"

export const PRIORITIES = ["none", "low", "medium", "high"] as const

/** Version 2: a priority per card. The hub runs this one; `?v=1` runs a v1 tab. */
export const Board = evolve(BoardV1, {
  version: 2,
  // v1 cards have no priority: absent means none, so the state carries over as it is (a fresh
  // copy: the input may be the hub's live state, a proxy that structuredClone refuses).
  migrateState: (s: BoardState): BoardState => ({
    columns: [...s.columns],
    cards: Object.fromEntries(Object.entries(s.cards).map(([id, card]) => [id, { ...card }])),
  }),
  commands: {
    ...BoardV1.commands,
    setPriority: {
      args: Schema.Struct({ id: Schema.String, priority: Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 3 })) }),
      apply: (s: BoardState, a, ctx) => {
        const card = s.cards[a.id] ?? ctx.reject("This card was deleted by someone else.")
        if (a.priority === 0) delete card.priority
        else card.priority = a.priority
      },
    },
  },
  // Every v1 command is unchanged (carried over both ways). A v1 reader cannot be shown a
  // priority (it is told "update required"); clearing one shows it nothing, as it never saw one.
  downcast: { setPriority: (a) => (a.priority === 0 ? [] : undefined) },
})
