/**
 * The mixed fleet: one document of a machine with three versions, written and read by
 * replicas of different app versions while the hub and the replicas are upgraded.
 *
 * - v1 (test/support/versioned-machines.ts TodoV1): add, toggle, rename, addDone.
 * - v2 (TodoV2): add gains a priority, rename becomes retitle, addDone upcasts to two
 *   commands; downcasts declared for add and retitle, setPriority goes down only when its
 *   priority is 0 (a v1 reader is told `update-required` at any other).
 * - v3 (here): priorities count in tenths (the state migration multiplies them by 10: not
 *   idempotent, so a migration run twice shows), add and setPriority upcast x10 and go down
 *   only when divisible by 10; `archive` is new with no downcast declared (a v2 reader cannot
 *   be shown it); `star` is new with a declared downcast (to setPriority 9, which v1 cannot
 *   show). The downcast of `add` throws on the title "t42" (an app's migration code failing
 *   on a value its schema accepts): an older reader cannot be shown that entry, as if the
 *   downcast had said so, and nothing else breaks. The state migration throws on a state
 *   with an item titled t0, t13, t26... (a multiple of 13: `blockingTitle`), which v1 and v2
 *   writers write now and then and a rename or retitle takes away again: a hub upgraded then
 *   keeps the document at its stored version until a load finds no such title
 *   (core/authority/held-version.ts), an upgraded replica's store opens at seq 0, an app in
 *   compat mode is told `migration-failed` for such a state. The upcasts of `add` and `setPriority` hand on
 *   a key v3's schema lacks, and v3's `add` and `setPriority` keep every key they get: applied
 *   as it came, an upcast command would put in the hub's state what its log does not hold.
 *
 * What the checker needs to judge it: the form a command submitted at version v takes in the
 * log at the epoch of its entry (`logForm`), and the document as a replica of version k
 * sees it (`viewAt`): the log replayed from its start, every entry converted to k through the
 * declared upcasts and downcasts, up to the first entry k cannot be shown.
 */
import * as Schema from "effect/Schema"
import type { Entry, Machine } from "../../core/index.js"
import { makeContext } from "../../core/machine.js"
import { hashState } from "../../core/hash.js"
import { asOne, encodeCmds, evolve, historyOf, BATCH, MIGRATE, decodeCmd, type Cmd } from "../../core/schema/versions.js"
import { TodoV1, TodoV2, type S2, type Item2 } from "../support/versioned-machines.js"
import { argsKey } from "./hostile.js"
import type { Rng } from "./workload.js"

type S3 = { items: Record<string, Item2>; archived: string[] }
type Ctx = { reject(r: string): never }

const Id = Schema.Struct({ id: Schema.String })
const Titled = Schema.Struct({ id: Schema.String, title: Schema.String })
const Prio = Schema.Struct({ id: Schema.String, priority: Schema.Number })

const tenths = (items: Record<string, Item2>): Record<string, Item2> =>
  Object.fromEntries(Object.entries(items).map(([k, i]) => [k, { title: i.title, done: i.done, priority: i.priority * 10 }]))
const down10 = (p: number): number | undefined => (p % 10 === 0 ? p / 10 : undefined)
/** A title v3's downcast of `add` throws on (about 1 in 100 v3 adds). */
const THROWS_DOWN = "t42"

/** The start of what v3's state migration throws with (the app's error, quoted in every migration-failed). */
export const MIGRATION_REFUSES = "v3 cannot migrate an item titled"
/** A title v3's state migration refuses: t0, t7, t14... t98 (15 of the workload's 100). */
const blocks = (title: unknown): boolean => typeof title === "string" && /^t\d+$/.test(title) && Number(title.slice(1)) % 7 === 0
/** The first title of a state (of any version) that v3's state migration throws on, if any. */
export const blockingTitle = (state: unknown): string | undefined => {
  const items = (state as { items?: Record<string, { title?: unknown }> } | null)?.items ?? {}
  return Object.values(items).map((i) => i.title).find(blocks) as string | undefined
}

/** v3: priorities in tenths, archive (no downcast) and star (down to setPriority 9). */
export const VTodoV3 = evolve(TodoV2, {
  version: 3,
  migrateState: (s: S2): S3 => {
    const t = blockingTitle(s)
    if (t !== undefined) throw new Error(`${MIGRATION_REFUSES} ${t}`)
    return { items: tenths(s.items), archived: [] }
  },
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String, priority: Schema.Number }),
      // Takes every key it is given: what an upcast hands on past the schema must not reach it.
      apply: (s: S3, { id, ...item }: { id: string; title: string; priority: number }, ctx: Ctx) => {
        if (s.items[id]) ctx.reject(`There is already an item ${id}.`)
        s.items[id] = { done: false, ...item }
      },
    },
    toggle: { args: Id, apply: (s: S3, a: { id: string }, ctx: Ctx) => { const i = s.items[a.id] ?? ctx.reject(`No item ${a.id}.`); i.done = !i.done } },
    retitle: { args: Titled, apply: (s: S3, a: { id: string; title: string }, ctx: Ctx) => { (s.items[a.id] ?? ctx.reject(`No item ${a.id}.`)).title = a.title } },
    // A patch: every key it is given but the id.
    setPriority: { args: Prio, apply: (s: S3, { id, ...patch }: { id: string; priority: number }, ctx: Ctx) => { Object.assign(s.items[id] ?? ctx.reject(`No item ${id}.`), patch) } },
    star: { args: Id, apply: (s: S3, a: { id: string }, ctx: Ctx) => { (s.items[a.id] ?? ctx.reject(`No item ${a.id}.`)).priority = 90 } },
    archive: {
      args: Id,
      apply: (s: S3, a: { id: string }, ctx: Ctx) => {
        if (!s.items[a.id]) ctx.reject(`No item ${a.id}.`)
        if (!s.archived.includes(a.id)) s.archived.push(a.id)
      },
    },
  },
  upcast: {
    // add and setPriority hand on a key v3's schema does not have (`was`): the log leaves it out, so must the apply.
    add: (a) => ({ name: "add", args: { ...a, priority: a.priority * 10, was: a.priority } }),
    setPriority: (a) => ({ name: "setPriority", args: { ...a, priority: a.priority * 10, was: a.priority } }),
  },
  downcast: {
    add: (a) => {
      if (a.title === THROWS_DOWN) throw new Error(`v2 has no title ${THROWS_DOWN}`)
      const p = down10(a.priority)
      return p === undefined ? undefined : { name: "add", args: { ...a, priority: p } }
    },
    setPriority: (a) => { const p = down10(a.priority); return p === undefined ? undefined : { name: "setPriority", args: { ...a, priority: p } } },
    star: (a) => ({ name: "setPriority", args: { id: a.id, priority: 9 } }),
  },
})

export const NEWEST = 3
const HISTORY = historyOf(VTodoV3)!

/**
 * The machine an app of version v runs. v1 and v2 are the builds of their time (v1 knows no
 * history at all, v2 knows v1..v2); v3 knows the whole history.
 */
export const appMachine = (v: number): Machine<any, any> => (v === 1 ? TodoV1 : v === 2 ? TodoV2 : VTodoV3)
/** The machine a hub of version v serves (the same builds). */
export const hubMachine = appMachine

const IDS = ["a", "b", "c", "d", "e"]

/** A command an app of version v submits (names and arguments of v). */
export const versionedCommand = (rng: Rng, v: number): [string, unknown] => {
  const id = IDS[Math.floor(rng() * IDS.length)]!
  const title = `t${Math.floor(rng() * 100)}`
  const r = rng()
  if (v === 1) {
    if (r < 0.35) return ["add", { id, title }]
    if (r < 0.6) return ["toggle", { id }]
    if (r < 0.8) return ["rename", { id, title }]
    return ["addDone", { id, title }]
  }
  // v3 counts in tenths: mostly whole v2 priorities, sometimes one v2 cannot be shown.
  const priority = (p: number) => (v === 2 ? p : rng() < 0.8 ? p * 10 : p * 10 + 5)
  if (r < 0.35) return ["add", { id, title, priority: rng() < 0.6 ? 0 : priority(1 + Math.floor(rng() * 3)) }]
  if (r < 0.6) return ["toggle", { id }]
  if (r < 0.8) return ["retitle", { id, title }]
  if (v === 2 || r < 0.9) return ["setPriority", { id, priority: rng() < 0.7 ? 0 : priority(1 + Math.floor(rng() * 3)) }]
  if (r < 0.96) return ["star", { id }]
  return ["archive", { id }]
}

/** The version of each entry's epoch: entries before a `$migrate {from, to}` are of `from`. */
export const epochs = (entries: ReadonlyArray<Entry>, current: number): number[] => {
  const out: number[] = new Array(entries.length)
  let v = current
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!
    if (e.name === MIGRATE) v = (e.args as { from: number }).from
    out[i] = v
  }
  return out
}

/** The form (name and canonical arguments key) a command of version `from` has when logged at version `to`; a string says why there is none. */
export const logForm = (name: string, args: unknown, from: number, to: number): { readonly name: string; readonly argsKey: string | undefined } | string => {
  const list = HISTORY.convert([{ name, args }], from, to)
  if (list === undefined) return `v${from} ${name} has no form at v${to}`
  if (list.length === 0) return `v${from} ${name} does nothing at v${to}`
  const one = asOne(encodeCmds(HISTORY.at(to), list))
  return { name: one.name, argsKey: argsKey(one.args) }
}

/** The decoded commands of one logged entry of version v (a `$batch` is its list); undefined for an entry v cannot read (a no-op). */
const commandsOf = (e: Entry, v: number): Cmd[] | undefined => {
  const m = HISTORY.at(v)
  const items: Array<[string, unknown]> = e.name === BATCH ? (e.args as Array<[string, unknown]>) : [[e.name, e.args]]
  const out: Cmd[] = []
  for (const [name, encoded] of items) {
    const d = decodeCmd(m, name, encoded)
    if (!d.ok) return undefined
    out.push({ name, args: d.args })
  }
  return out
}

export interface View {
  readonly seq: number
  readonly hash: string
  /** The state at `seq` (plain data, a copy). */
  readonly state: unknown
  /** The first entry version k cannot be shown, if one came before `upTo`. */
  readonly barrier: number | undefined
}

/**
 * The document as an app of version k sees it after entry `upTo`: from the initial state
 * (of the first epoch, migrated up to k where older), each entry converted to k and applied
 * atomically with k's commands (a rejection leaves the state as it was), `$migrate` nothing.
 * Independent of the engine's follower code: plain objects, a copy per entry.
 */
export const viewAt = (docId: string, entries: ReadonlyArray<Entry>, current: number, k: number, upTo: number): View => {
  const eps = epochs(entries, current)
  const first = eps[0] ?? current
  const m = HISTORY.at(k)
  let state: unknown = first < k ? HISTORY.migrateState(HISTORY.at(first).initial(), first, k, { seq: 0, time: 0, random: () => 0 }) : m.initial()
  let seq = 0
  for (let i = 0; i < entries.length && entries[i]!.seq <= upTo; i++) {
    const e = entries[i]!
    seq = e.seq
    if (e.name === MIGRATE) continue
    const cmds = commandsOf(e, eps[i]!)
    if (cmds === undefined) continue
    const conv = HISTORY.convert(cmds, eps[i]!, k)
    if (conv === undefined) return { seq: e.seq - 1, hash: hashState(state), state, barrier: e.seq }
    let draft = structuredClone(state)
    try {
      const ctx = makeContext(docId, e.seq, e.time, e.clientId)
      // Each converted command as k's schema encodes it and reads it back (the log's form): an
      // upcast's raw output may carry keys the schema drops.
      for (const c of encodeCmds(m, conv)) {
        const d = decodeCmd(m, c.name, c.args)
        if (!d.ok) throw new Error(d.rejection.message)
        const out = d.cmd.apply(draft, d.args, ctx)
        if (out !== undefined) draft = out
      }
      state = draft
    } catch {
      // A rejection at k: as the replica does, the entry changes nothing.
    }
  }
  return { seq, hash: hashState(state), state, barrier: undefined }
}

