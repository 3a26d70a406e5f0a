/**
 * The simulator's machines.
 *
 * - TodoPlus: the README's Todo plus the commands real apps get wrong: `patch`
 *   (`Object.assign(item, fields)` with free-form fields), commands that alias (`s.b = s.a`),
 *   write non-plain values, or write and then reject. The engine must keep the state a tree
 *   of plain data whatever they do (DESIGN.md, state model).
 * - Big: documents of megabytes (32-64 KiB strings), and `flags`: arguments whose compact
 *   form (protocol 2) is three times their canonical one (a union adds its member's index
 *   to each value), so every message that carries them must be cut by the bytes it is sent as.
 * - a deliberately non-deterministic machine (per simulation, seeded): only checkpoints can
 *   notice it, so it is what proves checkpoint verification works.
 */
import * as Schema from "effect/Schema"
import { defineMachine, type Machine } from "../../core/index.js"
import { yText } from "../../adapters/yjs/index.js"
import { automergeText } from "../../adapters/automerge/index.js"
import { evolve } from "../../core/schema/versions.js"
import { MAX_BURN_MS, simCpu } from "./cpu.js"

export interface TodoItem {
  title: string
  done: boolean
  order: number
  [field: string]: unknown
}

export interface TodoState {
  items: Record<string, TodoItem>
  bumps: number
  pinned: unknown[]
  log: string[]
  /** ctx.random() of the last `roll` entries: seeded per (document, seq), so all different. */
  rolls: number[]
}

class Point {
  constructor(readonly x: number, readonly y: number) {}
}

/**
 * The CPU hog's machine (`--cpu-hog`): `burn` stands for app code that is slow on the hub (a
 * walk over a large state), taking up to MAX_BURN_MS of the simulated CPU (cpu.ts). Only the
 * hog's own document, which no replica follows, runs it (the hub, and its replays).
 */
export const SimBurner = defineMachine({
  name: "sim-burner",
  version: 1,
  initial: () => ({ n: 0 }),
  commands: {
    burn: {
      args: Schema.Struct({ ms: Schema.Number }),
      apply: (state, { ms }) => {
        simCpu.burn(Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_BURN_MS) : 0)
        state.n++
      },
    },
  },
})

/** What `stamp` writes into an item: every kind of value that is not plain data, and edge numbers. */
export const STAMP_KINDS = ["date", "map", "set", "fn", "class", "bigint", "symbol", "cycle", "infinity", "nan", "negzero", "undefined"] as const

const stampValue = (kind: string, item: unknown, time: number): unknown => {
  switch (kind) {
    case "date": return new Date(time)
    case "map": return new Map([["a", 1]])
    case "set": return new Set([1])
    case "fn": return () => time
    case "class": return new Point(1, 2)
    case "bigint": return BigInt(time)
    case "symbol": return Symbol("s")
    case "cycle": return item
    case "infinity": return Infinity
    case "nan": return NaN
    case "negzero": return -0
    default: return undefined
  }
}

export const TodoPlus = defineMachine({
  name: "todo-plus",
  version: 1,
  initial: (): TodoState => ({ items: {}, bumps: 0, pinned: [], log: [], rolls: [] }),
  commands: {
    // The README's Todo, as written there (plus a random order: ctx.random must differ per seq).
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (state, { id, title }, ctx) => {
        if (state.items[id]) ctx.reject(`There is already an item ${id}.`)
        state.items[id] = { title, done: false, order: Math.floor(ctx.random() * 2 ** 32) }
      },
    },
    toggle: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        const item = state.items[id] ?? ctx.reject(`No item ${id}.`)
        item.done = !item.done
      },
    },
    rename: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (state, { id, title }, ctx) => {
        // Quotes a cut of the title, as apps do: through an emoji it leaves a lone surrogate.
        const item = state.items[id] ?? ctx.reject(`No item ${id} to call "${title.slice(0, 3)}…".`)
        item.title = title
      },
    },
    remove: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        if (!state.items[id]) ctx.reject(`No item ${id}.`)
        delete state.items[id]
      },
    },
    // Free-form fields merged into an item: keys come from the sender.
    patch: {
      args: Schema.Struct({ id: Schema.String, fields: Schema.Record(Schema.String, Schema.Unknown) }),
      apply: (state, { id, fields }, ctx) => {
        const item = state.items[id] ?? ctx.reject(`No item ${id}.`)
        Object.assign(item, fields)
      },
    },
    // Aliasing: one object reachable from two places (s.b = s.a).
    alias: {
      args: Schema.Struct({ from: Schema.String, to: Schema.String }),
      apply: (state, { from, to }, ctx) => {
        state.items[to] = state.items[from] ?? ctx.reject(`No item ${from}.`)
      },
    },
    pin: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        state.pinned.push(state.items[id] ?? ctx.reject(`No item ${id}.`))
        if (state.pinned.length > 4) state.pinned.shift()
      },
    },
    // Writes something that is not plain data (or an edge number).
    stamp: {
      args: Schema.Struct({ id: Schema.String, kind: Schema.String }),
      apply: (state, { id, kind }, ctx) => {
        const item = state.items[id] ?? ctx.reject(`No item ${id}.`)
        item.stamp = stampValue(kind, item, ctx.time)
      },
    },
    // Writes, then rejects: the write must be undone everywhere.
    bump: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        state.bumps++
        if (!state.items[id]) ctx.reject(`No item ${id} to bump.`)
      },
    },
    note: {
      args: Schema.Struct({ text: Schema.String }),
      apply: (state, { text }, ctx) => {
        state.log.push(`${ctx.clientId}:${text}@${ctx.seq}`)
        if (state.log.length > 20) state.log.splice(0, state.log.length - 20)
      },
    },
    roll: {
      args: Schema.Struct({}),
      apply: (state, _args, ctx) => {
        state.rolls.push(Math.floor(ctx.random() * 2 ** 32))
        if (state.rolls.length > 20) state.rolls.shift()
      },
    },
    boom: {
      args: Schema.Struct({}),
      apply: () => {
        throw new Error("kaboom")
      },
    },
  },
})

export interface BigState {
  blobs: Record<string, string>
  touches: Record<string, number>
}

/** Documents of megabytes: each `put` stores a string of tens of KiB. */
export const Big = defineMachine({
  name: "big",
  version: 1,
  initial: (): BigState => ({ blobs: {}, touches: {} }),
  commands: {
    put: {
      args: Schema.Struct({ id: Schema.String, text: Schema.String }),
      apply: (state, { id, text }) => {
        state.blobs[id] = text
      },
    },
    drop: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        if (state.blobs[id] === undefined) ctx.reject(`No blob ${id}.`)
        delete state.blobs[id]
      },
    },
    touch: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }) => {
        state.touches[id] = (state.touches[id] ?? 0) + 1
      },
    },
    // Booleans typed this way take one byte canonical and three compact.
    flags: {
      args: Schema.Struct({ id: Schema.String, flags: Schema.Array(Schema.Union([Schema.Union([Schema.Boolean, Schema.Number]), Schema.String])) }),
      apply: (state, { id, flags }) => {
        state.touches[id] = (state.touches[id] ?? 0) + flags.length
      },
    },
  },
})

/**
 * Non-deterministic on purpose, yet reproducible per seed: `roll` draws from a generator the
 * simulation owns, so each peer applying an entry draws a different number.
 */
export const makeDrifting = (draw: () => number): Machine<{ values: number[] }, any> =>
  defineMachine({
    name: "drifting",
    version: 1,
    initial: () => ({ values: [] as number[] }),
    commands: {
      roll: {
        args: Schema.Struct({}),
        apply: (s) => {
          s.values.push(Math.floor(draw() * 1e9))
          if (s.values.length > 50) s.values.shift()
        },
      },
    },
  })

/**
 * A document with collaborative texts (the demo's CardText, plus an Automerge text and one
 * ordered command): the replicas type into `text` (a Yjs Y.Text) and `am` (an Automerge text)
 * through the library's helpers, concurrently, while `touch` still goes through the
 * authority's order, so rebases run with CRDT merges pending.
 */
const simTextDef = {
  name: "sim-text",
  version: 1,
  initial: () => ({ touches: 0 }),
  commands: {
    touch: {
      args: Schema.Struct({}),
      apply: (s: { touches: number }) => {
        s.touches++
      },
    },
  },
}
export const SimText = defineMachine({ ...simTextDef, crdt: { text: yText(), am: automergeText() } })

/**
 * SimText as a hub process with lowered field limits has it (an operator lowering them across
 * restarts): the same name, version and fingerprint (limits are not in it). What was ordered
 * under higher limits still loads and replays (DESIGN invariant 11); new merges over them are refused.
 */
export const SimTextLowered = defineMachine({
  ...simTextDef,
  crdt: { text: yText({ maxUpdateBytes: 24 << 10, maxStructs: 40_000 }), am: automergeText({ maxUpdateBytes: 24 << 10 }) },
})

/**
 * SimText's v2 (`evolve`): its CRDT fields carry over as they are, the plain state gains
 * `edition` (a constant: migrating before or after a `touch` gives the same state, so a replica
 * that upgrades its stored v1 state lands where the hub's log does), `touch` is unchanged (goes
 * up and down as it is), and it adds a Yjs field `notes` (an added field: empty wherever the
 * document is migrated, its merges shown to v1 readers as nothing, a v2 app's edits to it
 * waiting in its outbox while the hub serves v1). The migration throws on anything but the plain v1 state. The mixed fleet's
 * replicas type into the text at their own versions (an app of v1 runs SimText, of v2 or v3
 * SimTextV2), and the hub serves v1 until its upgrade (simulation.ts `textMachine`).
 */
const textV2 = {
  version: 2,
  migrateState: (s: { touches: number }) => {
    if (typeof s.touches !== "number" || Object.keys(s).length !== 1) throw new Error(`sim-text v2 migrates a plain v1 state, not ${JSON.stringify(Object.keys(s))}`)
    return { touches: s.touches, edition: 2 }
  },
  commands: { touch: { args: Schema.Struct({}), apply: (s: { touches: number; edition: number }) => { s.touches++ } } },
}
export const SimTextV2 = evolve(SimText, { ...textV2, crdt: { notes: yText() } })
/** SimTextV2 under lowered field limits (as SimTextLowered is to SimText). */
export const SimTextLoweredV2 = evolve(SimTextLowered, { ...textV2, crdt: { notes: yText({ maxUpdateBytes: 24 << 10, maxStructs: 40_000 }) } })
