/**
 * The one-command machine the bundle entries share (core.ts, core-level.ts,
 * core-indexeddb.ts), written as the README writes it: effect by module path. core-barrel.ts
 * keeps its own copy, since the barrel import is what it measures.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "canon"

export const Todo = defineMachine({
  name: "todo",
  version: 1,
  initial: () => ({ items: {} as Record<string, { title: string; done: boolean }> }),
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (state, { id, title }, ctx) => {
        if (state.items[id]) ctx.reject(`There is already an item ${id}.`)
        state.items[id] = { title, done: false }
      },
    },
  },
})
