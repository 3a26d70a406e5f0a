/**
 * A todo machine with three versions, for the schema evolution tests.
 * v1: add, toggle, rename, addDone. v2: add gains a priority, rename becomes retitle, addDone
 * upcasts to two commands, setPriority is new (down to v1 only when the priority is 0).
 * v3: adds `archive` (no downcast: v2 readers cannot be shown it).
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/machine.js"
import { evolve } from "../../core/schema/versions.js"

export type Item1 = { title: string; done: boolean }
export type S1 = { items: Record<string, Item1> }
export type Item2 = Item1 & { priority: number }
export type S2 = { items: Record<string, Item2> }
export type S3 = { items: Record<string, Item2>; archived: string[] }

const Id = Schema.Struct({ id: Schema.String })
const Titled = Schema.Struct({ id: Schema.String, title: Schema.String })

/** A v1-only build (no history): what an app from before versions looked like. */
export const TodoV1 = defineMachine({
  name: "vtodo",
  version: 1,
  initial: (): S1 => ({ items: {} }),
  commands: {
    add: { args: Titled, apply: (s: S1, a, ctx) => { if (s.items[a.id]) ctx.reject(`There is already an item ${a.id}.`); s.items[a.id] = { title: a.title, done: false } } },
    toggle: { args: Id, apply: (s: S1, a, ctx) => { const i = s.items[a.id] ?? ctx.reject(`No item ${a.id}.`); i.done = !i.done } },
    rename: { args: Titled, apply: (s: S1, a, ctx) => { (s.items[a.id] ?? ctx.reject(`No item ${a.id}.`)).title = a.title } },
    addDone: { args: Titled, apply: (s: S1, a, ctx) => { if (s.items[a.id]) ctx.reject(`There is already an item ${a.id}.`); s.items[a.id] = { title: a.title, done: true } } },
  },
})

const v2Commands = {
  add: {
    args: Schema.Struct({ id: Schema.String, title: Schema.String, priority: Schema.Number }),
    apply: (s: S2, a: { id: string; title: string; priority: number }, ctx: { reject(r: string): never }) => {
      if (s.items[a.id]) ctx.reject(`There is already an item ${a.id}.`)
      s.items[a.id] = { title: a.title, done: false, priority: a.priority }
    },
  },
  toggle: { args: Id, apply: (s: S2, a: { id: string }, ctx: { reject(r: string): never }) => { const i = s.items[a.id] ?? ctx.reject(`No item ${a.id}.`); i.done = !i.done } },
  retitle: { args: Titled, apply: (s: S2, a: { id: string; title: string }, ctx: { reject(r: string): never }) => { (s.items[a.id] ?? ctx.reject(`No item ${a.id}.`)).title = a.title } },
  setPriority: {
    args: Schema.Struct({ id: Schema.String, priority: Schema.Number }),
    apply: (s: S2, a: { id: string; priority: number }, ctx: { reject(r: string): never }) => { (s.items[a.id] ?? ctx.reject(`No item ${a.id}.`)).priority = a.priority },
  },
}

/** v2, with downcasts for everything v1 can show. */
export const TodoV2 = evolve(TodoV1, {
  version: 2,
  migrateState: (s: S1): S2 => ({ items: Object.fromEntries(Object.entries(s.items).map(([k, i]) => [k, { ...i, priority: 0 }])) }),
  commands: v2Commands,
  upcast: {
    add: (a) => ({ name: "add", args: { ...a, priority: 0 } }),
    rename: (a) => ({ name: "retitle", args: a }),
    addDone: (a) => [{ name: "add", args: { ...a, priority: 0 } }, { name: "toggle", args: { id: a.id } }],
  },
  downcast: {
    add: (a) => ({ name: "add", args: { id: a.id, title: a.title } }),
    retitle: (a) => ({ name: "rename", args: a }),
    setPriority: (a) => (a.priority === 0 ? [] : undefined),
  },
})

/** The same v2 without any declared downcast (toggle still goes down: it did not change). */
export const TodoV2NoDown = evolve(TodoV1, {
  version: 2,
  migrateState: (s: S1): S2 => ({ items: Object.fromEntries(Object.entries(s.items).map(([k, i]) => [k, { ...i, priority: 0 }])) }),
  commands: v2Commands,
  upcast: {
    add: (a) => ({ name: "add", args: { ...a, priority: 0 } }),
    rename: (a) => ({ name: "retitle", args: a }),
    addDone: (a) => [{ name: "add", args: { ...a, priority: 0 } }, { name: "toggle", args: { id: a.id } }],
  },
})

const v3Commands = {
  add: { args: v2Commands.add.args, apply: (s: S3, a: { id: string; title: string; priority: number }, ctx: { reject(r: string): never }) => v2Commands.add.apply(s, a, ctx) },
  toggle: { args: Id, apply: (s: S3, a: { id: string }, ctx: { reject(r: string): never }) => v2Commands.toggle.apply(s, a, ctx) },
  retitle: { args: Titled, apply: (s: S3, a: { id: string; title: string }, ctx: { reject(r: string): never }) => v2Commands.retitle.apply(s, a, ctx) },
  setPriority: { args: v2Commands.setPriority.args, apply: (s: S3, a: { id: string; priority: number }, ctx: { reject(r: string): never }) => v2Commands.setPriority.apply(s, a, ctx) },
  archive: {
    args: Id,
    apply: (s: S3, a: { id: string }, ctx: { reject(r: string): never }) => {
      if (!s.items[a.id]) ctx.reject(`No item ${a.id}.`)
      if (!s.archived.includes(a.id)) s.archived.push(a.id)
    },
  },
}

const toV3 = (s: S2): S3 => ({ items: JSON.parse(JSON.stringify(s.items)), archived: [] })

/** v3 over v2 (downcasts declared): archive goes down to nothing. */
export const TodoV3 = evolve(TodoV2, { version: 3, migrateState: toV3, commands: v3Commands, downcast: { archive: () => [] } })
/** v3 over the v2 without downcasts; archive has none either. */
export const TodoV3NoDown = evolve(TodoV2NoDown, { version: 3, migrateState: toV3, commands: v3Commands })
