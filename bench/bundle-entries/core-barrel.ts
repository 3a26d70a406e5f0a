/**
 * Bundle (a) written with the `effect` barrel (`import { Schema } from "effect"`) instead of
 * the module path: the only difference from core.ts with todo.ts. Measures what the barrel costs an app
 * (the figure quoted in the README). Never run; bench/bundle.ts bundles it.
 */
import { Schema } from "effect"
import { CanonClient, defineMachine } from "canon"
import { wsClientTransport } from "canon/ws/browser"
import { systemRuntime } from "canon/system"

const Todo = defineMachine({
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

const client = await CanonClient.open({ transport: wsClientTransport("wss://sync.example.com/sync"), runtime: systemRuntime, machines: [Todo] })
const doc = await client.open(Todo, "groceries")
doc.subscribe((state) => console.log(state.items))
await doc.submit("add", { id: "milk", title: "Milk" })
