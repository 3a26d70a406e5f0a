/**
 * Bundle (a): what a browser app needs to sync one document. Written the way the README's
 * example is: effect by module path, a one-command machine, the browser WebSocket client.
 * Never run; bench/bundle.ts bundles it (and test/bundle-size.test.ts holds its size).
 */
import * as Schema from "effect/Schema"
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
