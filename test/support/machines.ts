/** Machines the tests and the simulator use. */
import { Schema } from "effect"
import { defineMachine } from "../../core/index.js"

export interface Item {
  title: string
  done: boolean
  order: number
}

/** A todo list: keyed items, commands that can be rejected, and ctx.random use. */
export const Todo = defineMachine({
  name: "todo",
  version: 1,
  initial: () => ({ items: {} as Record<string, Item>, count: 0, log: [] as string[] }),
  commands: {
    add: { args: Schema.Struct({ id: Schema.String, title: Schema.String }), apply: (s, a, ctx) => {
      if (s.items[a.id] !== undefined) ctx.reject(`Item ${a.id} already exists.`)
      s.items[a.id] = { title: a.title, done: false, order: Math.floor(ctx.random() * 1000) }
      s.count++
    } },
    rename: { args: Schema.Struct({ id: Schema.String, title: Schema.String }), apply: (s, a, ctx) => {
      const item = s.items[a.id]
      if (item === undefined) ctx.reject(`Item ${a.id} does not exist.`)
      item!.title = a.title
    } },
    toggle: { args: Schema.Struct({ id: Schema.String }), apply: (s, a, ctx) => {
      const item = s.items[a.id]
      if (item === undefined) ctx.reject(`Item ${a.id} does not exist.`)
      item!.done = !item!.done
    } },
    remove: { args: Schema.Struct({ id: Schema.String }), apply: (s, a, ctx) => {
      if (s.items[a.id] === undefined) ctx.reject(`Item ${a.id} does not exist.`)
      delete s.items[a.id]
      s.count--
    } },
    note: { args: Schema.Struct({ text: Schema.String }), apply: (s, a, ctx) => {
      s.log.push(`${ctx.clientId}:${a.text}@${ctx.seq}`)
      if (s.log.length > 20) s.log.splice(0, s.log.length - 20)
    } },
    boom: { args: Schema.Struct({}), apply: () => {
      throw new Error("kaboom")
    } },
  },
})

/** The smallest command: for throughput benchmarks. */
export const Counter = defineMachine({
  name: "counter",
  version: 1,
  initial: () => ({ value: 0 }),
  commands: {
    incr: { args: Schema.Struct({ by: Schema.Number }), apply: (s, a) => {
      s.value += a.by
    } },
  },
})

/** Non-deterministic on purpose (Math.random in apply): checkpoints must catch it. */
export const Flaky = defineMachine({
  name: "flaky",
  version: 1,
  initial: () => ({ values: [] as number[] }),
  commands: {
    roll: { args: Schema.Struct({}), apply: (s) => {
      s.values.push(Math.floor(Math.random() * 1e9))
      if (s.values.length > 50) s.values.shift()
    } },
  },
})
