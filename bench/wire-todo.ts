/**
 * The todo workload of the `wire` suite's bytes-per-command figure: a Todo-like machine
 * (add / rename / toggle) and a seeded stream of commands with realistic short strings
 * (10-character ids, titles people type into a todo list).
 */
import { Schema } from "effect"
import * as Y from "yjs"
import { defineMachine, seededRandom } from "../core/index.js"

export interface TodoItem {
  title: string
  done: boolean
}

export const WireTodo = defineMachine({
  name: "bench-todo",
  version: 1,
  initial: () => ({ items: {} as Record<string, TodoItem> }),
  commands: {
    add: { args: Schema.Struct({ id: Schema.String, title: Schema.String }), apply: (s, a, ctx) => {
      if (s.items[a.id] !== undefined) return ctx.reject(`Item ${a.id} already exists.`)
      s.items[a.id] = { title: a.title, done: false }
    } },
    rename: { args: Schema.Struct({ id: Schema.String, title: Schema.String }), apply: (s, a, ctx) => {
      const item = s.items[a.id]
      if (item === undefined) return ctx.reject(`Item ${a.id} does not exist.`)
      item.title = a.title
    } },
    toggle: { args: Schema.Struct({ id: Schema.String }), apply: (s, a, ctx) => {
      const item = s.items[a.id]
      if (item === undefined) return ctx.reject(`Item ${a.id} does not exist.`)
      item.done = !item.done
    } },
  },
})

const TITLES = [
  "Buy milk", "Call mom", "Book dentist appointment", "Pay electricity bill", "Water the plants",
  "Renew passport", "Pick up dry cleaning", "Email Sarah the slides", "Fix the bike tyre", "Gym at 7",
  "Order birthday present", "Return library books", "Clean the fridge", "Plan weekend trip",
  "Update CV", "Take out recycling", "Buy bread and eggs", "Review pull request", "Call the plumber", "Walk the dog",
]

const ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"

export type TodoCommand =
  | { readonly name: "add"; readonly args: { id: string; title: string } }
  | { readonly name: "rename"; readonly args: { id: string; title: string } }
  | { readonly name: "toggle"; readonly args: { id: string } }

/**
 * A seeded stream of todo commands: 40% add, 30% rename, 30% toggle (rename and toggle of
 * items this stream added, so none is rejected).
 */
export const todoWorkload = (seed: number): (() => TodoCommand) => {
  const rand = seededRandom(seed)
  const ids: string[] = []
  const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(rand() * xs.length)]!
  const newId = (): string => {
    let id = ""
    for (let i = 0; i < 10; i++) id += ID_CHARS[Math.floor(rand() * ID_CHARS.length)]
    return id
  }
  return () => {
    const r = rand()
    if (r < 0.4 || ids.length === 0) {
      const id = newId()
      ids.push(id)
      return { name: "add", args: { id, title: pick(TITLES) } }
    }
    if (r < 0.7) return { name: "rename", args: { id: pick(ids), title: pick(TITLES) } }
    return { name: "toggle", args: { id: pick(ids) } }
  }
}

/**
 * The same commands on a Yjs document, for the bytes comparison: `items` a Y.Map of Y.Map
 * {title, done} (each field its own entry, so a rename or a toggle updates one field), one
 * transaction per command; `apply` returns the V1 update it produced (what y-websocket sends,
 * before its own 2-3 byte header), in bytes.
 */
export const yjsTodo = (): { apply: (c: TodoCommand) => number } => {
  const doc = new Y.Doc()
  const items = doc.getMap<Y.Map<string | boolean>>("items")
  let bytes = 0
  doc.on("update", (u: Uint8Array) => {
    bytes += u.length
  })
  return {
    apply: (c) => {
      bytes = 0
      doc.transact(() => {
        if (c.name === "add") {
          const item = new Y.Map<string | boolean>()
          item.set("title", c.args.title)
          item.set("done", false)
          items.set(c.args.id, item)
        } else if (c.name === "rename") items.get(c.args.id)!.set("title", c.args.title)
        else {
          const item = items.get(c.args.id)!
          item.set("done", !item.get("done"))
        }
      })
      return bytes
    },
  }
}
