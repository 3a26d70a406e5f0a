/**
 * A machine's version history: each version's commands and state, and the pure,
 * deterministic migrations between neighbours.
 *
 * - `upcast` of each command from v(k) to v(k+1): to one command, several, or none. Total: a
 *   command whose schema did not change is carried over as it is; a removed or changed
 *   command must declare one (checked by `evolve`).
 * - `downcast` from v(k+1) to v(k), where one exists: a command unchanged since v(k) goes down
 *   as it is; others only if declared. A declared downcast may return `undefined` ("an
 *   older reader cannot be shown this": that reader is told `update-required`) or `[]`
 *   ("nothing to show").
 * - `migrateState` from v(k) to v(k+1): returns a fresh plain tree (it must not share objects
 *   with its input); its ctx has the seq of the version change, the time and a seeded random.
 * - CRDT fields carry over unchanged: every version has the previous one's, their merge
 *   commands (`$crdt.<field>`) go up and down as they are, and `migrateState` sees and returns
 *   the plain state only (the fields' content stays where it is). A version may add fields
 *   (`crdt`; a machine's first ones too): they start empty, their merges go down to an older
 *   version as nothing, and an app's edits to them wait for a hub at that version. None is
 *   ever removed.
 *
 * Each version is a complete `Machine` (`historyOf(m).at(k)`): its fingerprint uses the
 * formula of `defineMachine`, so a build that only knows v(k) and a build with the whole
 * history agree on v(k). Three built-in commands, reserved (`$` names are never declared):
 * `$batch` (several commands applied as one, atomically: what an upcast to several gives),
 * `$as` (a command written at an older version, carried by a newer replica's outbox so it
 * is sent in its original form and applied once) and `$migrate` (a version change in a
 * document's log, written by the hub; replicas treat it as nothing).
 *
 * @example
 * ```ts
 * import * as Schema from "effect/Schema"
 * import { defineMachine } from "canon"
 * import { evolve } from "canon/schema"
 *
 * type Item1 = { title: string; done: boolean }
 * export const TodoV1 = defineMachine({
 *   name: "todo", version: 1,
 *   initial: () => ({ items: {} as Record<string, Item1> }),
 *   commands: {
 *     add: { args: Schema.Struct({ id: Schema.String, title: Schema.String }), apply: (s, a) => { s.items[a.id] = { title: a.title, done: false } } },
 *     toggle: { args: Schema.Struct({ id: Schema.String }), apply: (s, a, ctx) => { const i = s.items[a.id] ?? ctx.reject("No such item."); i.done = !i.done } },
 *   },
 * })
 *
 * type Item2 = Item1 & { priority: number }
 * // v2 adds a priority. Old versions stay in the bundle: old logs, outboxes and readers need them.
 * export const Todo = evolve(TodoV1, {
 *   version: 2,
 *   migrateState: (s) => ({ items: Object.fromEntries(Object.entries(s.items).map(([k, i]) => [k, { ...i, priority: 0 }])) }),
 *   commands: {
 *     add: { args: Schema.Struct({ id: Schema.String, title: Schema.String, priority: Schema.Number }), apply: (s: { items: Record<string, Item2> }, a) => { s.items[a.id] = { title: a.title, done: false, priority: a.priority } } },
 *     toggle: { args: Schema.Struct({ id: Schema.String }), apply: (s: { items: Record<string, Item2> }, a, ctx) => { const i = s.items[a.id] ?? ctx.reject("No such item."); i.done = !i.done } },
 *     setPriority: { args: Schema.Struct({ id: Schema.String, priority: Schema.Number }), apply: (s: { items: Record<string, Item2> }, a, ctx) => { (s.items[a.id] ?? ctx.reject("No such item.")).priority = a.priority } },
 *   },
 *   upcast: { add: (a) => ({ name: "add", args: { ...a, priority: 0 } }) },          // toggle: unchanged
 *   downcast: {
 *     add: (a) => ({ name: "add", args: { id: a.id, title: a.title } }),
 *     setPriority: (a) => (a.priority === 0 ? [] : undefined),                        // v1 cannot show a priority
 *   },
 * })
 * // A hub running `Todo` serves v1 and v2 apps; a v2 app opening a v1 replica's storage
 * // migrates its state and sends its v1 outbox as it was written.
 * ```
 */
import * as Result from "effect/Result"
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import type { CrdtDecls } from "../crdt/fields.js"
import { CRDT_KEY, isMergeName } from "../crdt/roots.js"
import { canonError } from "../errors.js"
import {
  defineMachine, type CommandContext, type CommandDef, type CompiledCommand, type Machine, type MachineDef,
} from "../machine.js"
import { decodeCmd, encodeCmds, settleCmds } from "./commands.js"
import { AS, BATCH, historyOf, isReserved, registerHistory, type Cmd, type MachineHistory, type MigrationContext } from "./registry.js"
import { upgradeStoredReplica } from "./replica-upgrade.js"
import { entriesForVersion } from "./serve.js"
import { compatSession } from "./compat.js"

// What other modules (the hub, tests) import from here, defined beside the registry or the codecs.
export { AS, BATCH, HUB_CLIENT, MIGRATE, historyOf, isReserved, type Cmd, type MachineHistory, type MigrationContext } from "./registry.js"
export { asOne, decodeCmd, encodeCmds } from "./commands.js"

/** A command of machine M, typed by name. */
export type CmdOf<A> = { [K in keyof A & string]: { readonly name: K; readonly args: A[K] } }[keyof A & string]

/** What a migration of one command gives: one command, several (applied as one, atomically), or none. */
export type Converted<A> = CmdOf<A> | ReadonlyArray<CmdOf<A>>

export interface EvolveDef<S1, A1 extends Record<string, unknown>, S2, A2 extends Record<string, unknown>, C2 extends CrdtDecls = {}> {
  /** The previous version + 1. */
  readonly version: number
  /**
   * CRDT fields this version adds to those of the previous one (which carry over by
   * themselves), or a machine's first ones (its state must then be a plain object). Added
   * fields start empty; older readers are not shown their edits, and an app's edits to them
   * wait for a hub that runs this version.
   */
  readonly crdt?: C2
  /** The full command set of the new version (a previous command left out is removed). */
  readonly commands: { readonly [K in keyof A2]: CommandDef<S2, A2[K], any> }
  readonly migrateState: (state: S1, ctx: MigrationContext) => S2
  /** The state of a new document. Default: the previous version's, migrated. */
  readonly initial?: () => S2
  /** Required for every previous command that was removed or whose arguments changed. */
  readonly upcast?: { readonly [K in keyof NoInfer<A1>]?: (args: NoInfer<A1>[K]) => Converted<NoInfer<A2>> }
  /** Optional, per new command: `undefined` when an older reader cannot be shown it. */
  readonly downcast?: { readonly [K in keyof NoInfer<A2>]?: (args: NoInfer<A2>[K]) => Converted<NoInfer<A1>> | undefined }
}

interface Step {
  readonly from: number
  readonly to: number
  readonly up: ReadonlyMap<string, (args: unknown) => unknown>
  readonly down: ReadonlyMap<string, (args: unknown) => unknown>
  readonly migrateState: (state: unknown, ctx: MigrationContext) => unknown
}

interface InternalHistory extends MachineHistory {
  readonly steps: Step[]
  readonly plains: Machine<any, any>[]
}

/** Applies several commands as one, on one draft and one ctx. */
const applyAll = (state: unknown, list: ReadonlyArray<{ cmd: CompiledCommand<any>; args: unknown }>, ctx: CommandContext): unknown => {
  let cur = state
  for (const { cmd, args } of list) {
    const out = cmd.apply(cur, args, ctx)
    if (out !== undefined) cur = out
  }
  return cur === state ? undefined : cur
}

const toList = (out: unknown): Cmd[] => (Array.isArray(out) ? (out as Cmd[]) : [out as Cmd])

/** A command's shape: an object with a name (its arguments are checked by its schema later). */
const isCmd = (c: unknown): c is Cmd => typeof c === "object" && c !== null && typeof (c as { name?: unknown }).name === "string"

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * Runs the app's migration code. It runs on what peers sent (an old client's command, a
 * document's log), so it may throw on arguments its schema accepts (a parse helper, a length
 * check): that is a typed `migration-failed` for every caller to handle, never an exception
 * out of a connection handler or a commit.
 */
const migrating = <T>(what: string, f: () => T): T => {
  try {
    return f()
  } catch (e) {
    throw canonError("migration-failed", `${what} threw: ${messageOf(e)}. Make it handle every value its version's schema accepts.`)
  }
}

/** Adds the built-in commands to a version's compiled machine (they are not fingerprinted). */
const withBuiltins = (m: Machine<any, any>, history: () => MachineHistory): Machine<any, any> => {
  const compiled = new Map(m.compiled)
  const fail = (message: string) => Result.fail({ message } as never)
  // With CRDT fields, the built-ins run as the machine's own commands do (runApply finds the
  // fields first, and keeps `$crdt` out of the state); a merge inside one would be applied as
  // nothing (runApply merges only a merge command sent as itself), so it is refused.
  const fields = [...m.compiled.values()].find((c) => c.crdt !== undefined)?.crdt
  const marker = fields === undefined ? {} : { crdt: { decls: fields.decls, runtime: fields.runtime } }
  const merges = (list: ReadonlyArray<{ cmd: CompiledCommand<any> }>) => list.some((c) => c.cmd.crdt?.field !== undefined)
  const MERGE_INSIDE = "a CRDT merge command travels as itself, never inside a $batch or $as"
  // $batch: [[name, encodedArgs], ...] of this version, applied in order as one command.
  compiled.set(BATCH, {
    decode: (encoded) => {
      if (!Array.isArray(encoded)) return fail("a $batch is a list of [name, args]")
      const list: { cmd: CompiledCommand<any>; args: unknown }[] = []
      for (const item of encoded as unknown[]) {
        if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== "string") return fail("a $batch is a list of [name, args]")
        const d = decodeCmd(m, item[0], item[1])
        if (!d.ok) return fail(d.rejection.message)
        list.push({ cmd: d.cmd, args: d.args })
      }
      return merges(list) ? fail(MERGE_INSIDE) : Result.succeed(list)
    },
    encode: (args) => Result.succeed(args),
    apply: (state, list, ctx) => applyAll(state, list as { cmd: CompiledCommand<any>; args: unknown }[], ctx),
    ...marker,
  })
  // $as: { v, name, args } a command written at version v <= this one, upcast here.
  compiled.set(AS, {
    decode: (encoded) => {
      const a = encoded as { v?: unknown; name?: unknown; args?: unknown } | null
      if (a === null || typeof a !== "object" || typeof a.v !== "number" || typeof a.name !== "string") return fail("a $as is { v, name, args }")
      const h = history()
      if (!h.has(a.v) || a.v > m.version) return fail(`version ${a.v} of "${m.name}" is not known here`)
      const d = decodeCmd(h.at(a.v), a.name, a.args)
      if (!d.ok) return fail(d.rejection.message)
      const list: { cmd: CompiledCommand<any>; args: unknown }[] = []
      try {
        // Applied as the log's form decodes (settleCmds): an upcast may name a command this version
        // lacks, give arguments its schema refuses, or hand on keys it does not have.
        list.push(...settleCmds(m, h.convert([{ name: a.name, args: d.args }], a.v, m.version)!).apply)
      } catch (e) {
        return fail(`its upcast from v${a.v} failed: ${messageOf(e)}`)
      }
      return merges(list) ? fail(MERGE_INSIDE) : Result.succeed(list)
    },
    encode: (args) => Result.succeed(args),
    apply: (state, list, ctx) => applyAll(state, list as { cmd: CompiledCommand<any>; args: unknown }[], ctx),
    ...marker,
  })
  return { ...m, compiled, fingerprint: m.fingerprint }
}

/** The one-command fingerprint of a command: equal when its argument schema is the same. */
const commandShape = (name: string, def: CommandDef<any, any, any>): string =>
  defineMachine({ name: "shape", version: 1, initial: () => null, commands: { [name]: def } }).fingerprint

/** A state's plain part and, in a snapshot's form of a state with CRDT fields, their content. */
const withoutFields = (state: unknown): { readonly plain: unknown; readonly encoded: unknown } => {
  if (typeof state !== "object" || state === null || !Object.prototype.hasOwnProperty.call(state, CRDT_KEY)) return { plain: state, encoded: undefined }
  const { [CRDT_KEY]: encoded, ...plain } = state as Record<string, unknown>
  return { plain, encoded }
}

const buildHistory = (name: string, machines: ReadonlyArray<Machine<any, any>>, steps: ReadonlyArray<Step>): MachineHistory => {
  const byVersion = new Map(machines.map((m) => [m.version, m]))
  const oldest = machines[0]!.version
  const newest = machines[machines.length - 1]!.version
  const stepUp = new Map(steps.map((s) => [s.from, s]))
  const h: MachineHistory = {
    name,
    versions: machines.map((m) => m.version),
    oldest,
    newest,
    at: (v) => {
      const m = byVersion.get(v)
      if (m === undefined) throw canonError("machine-mismatch", `Machine "${name}" has no version ${v} (it has ${oldest}..${newest}).`)
      return m
    },
    has: (v) => byVersion.has(v),
    convert: (cmds, from, to) => {
      let cur: Cmd[] = [...cmds]
      if (from < to) {
        for (let v = from; v < to; v++) {
          const s = stepUp.get(v)!
          // A merge is the same in every version; one made by an app's upcast would be applied as
          // nothing in a $batch and skip what merges are charged where they enter: never.
          cur = cur.flatMap((c) => {
            if (isMergeName(c.name)) return [c]
            const what = `The upcast of "${c.name}" from v${v} to v${v + 1}`
            const out = toList(migrating(what, () => s.up.get(c.name)!(c.args)))
            if (out.some((o) => isCmd(o) && isMergeName(o.name))) throw canonError("migration-failed", `${what} gave a CRDT merge command; merges come only from the field's own edits.`)
            return out
          })
        }
        return cur
      }
      for (let v = from; v > to; v--) {
        const s = stepUp.get(v - 1)!
        const next: Cmd[] = []
        for (const c of cur) {
          if (isMergeName(c.name)) {
            // A field the older version does not have (a later one added it): nothing to show.
            if (Object.prototype.hasOwnProperty.call(byVersion.get(v - 1)!.crdt ?? {}, c.name.slice(CRDT_KEY.length + 1))) next.push(c)
            continue
          }
          const f = s.down.get(c.name)
          let out: unknown
          try {
            out = f === undefined ? undefined : f(c.args)
          } catch {
            // A downcast that throws cannot show this to an older reader, as one that returns undefined.
            return undefined
          }
          // Not a command (null, [null], a number): an app's bug, read as "cannot be shown".
          const list = toList(out)
          // A merge made by a downcast: as an upcast's, never (it would be applied as nothing).
          if (out === undefined || !list.every(isCmd) || list.some((o) => isMergeName(o.name))) return undefined
          next.push(...list)
        }
        cur = next
      }
      return cur
    },
    migrateState: (state, from, to, ctx) => {
      // A state with CRDT fields in its snapshot form (a stored replica's, an older hub's) holds
      // their content under `$crdt`: the app's migrations see the plain state, the fields stay.
      // (A version without fields has no such form: a `$crdt` key of its state is the app's
      // data, which its migration sees, never the content of the fields a later version adds.)
      const fields = byVersion.get(from)?.crdt === undefined ? { plain: state, encoded: undefined } : withoutFields(state)
      let cur = fields.plain
      for (let v = from; v < to; v++) {
        const state = cur
        const what = `The state migration of "${name}" from v${v} to v${v + 1}`
        const out = migrating(what, () => stepUp.get(v)!.migrateState(state, ctx))
        if (typeof out === "object" && out !== null && Object.prototype.hasOwnProperty.call(out, CRDT_KEY)) {
          throw canonError("migration-failed", `${what} returned a state with the key "${CRDT_KEY}", which holds CRDT fields' content. Leave it out: the fields carry over by themselves.`)
        }
        // Through the canonical encoding: a plain, fresh tree whatever the function returned,
        // and one a snapshot can hold (a too-deep or non-plain result is the migration's failure too).
        try {
          cur = decodeCanonical(encodeCanonical(out))
        } catch (e) {
          throw canonError("migration-failed", `${what} returned a state that cannot be stored: ${messageOf(e)}. Make it return plain data no deeper than a state may be.`)
        }
      }
      if (fields.encoded === undefined && byVersion.get(to)?.crdt === undefined) return cur
      if (typeof cur !== "object" || cur === null || Array.isArray(cur)) {
        throw canonError("migration-failed", `The state migration of "${name}" from v${from} to v${to} returned a state that is not a plain object: a machine with CRDT fields keeps its state one.`)
      }
      return fields.encoded === undefined ? cur : { ...(cur as Record<string, unknown>), [CRDT_KEY]: fields.encoded }
    },
    // The client-side code, carried by the history so that the replica imports only the registry.
    entriesForVersion: (entries, t, versionOf) => entriesForVersion(h, entries, t, versionOf),
    downcastOutbox: (cmds, from, to) => {
      const older = h.at(to)
      const out: Array<{ clientSeq: number; name: string; args: unknown }> = []
      for (const p of cmds) {
        let form: Cmd | undefined
        const a = p.name === AS ? p.encoded as { v?: unknown; name?: unknown; args?: unknown } | null : undefined
        // A `$as` as its command's name (a damaged store's record without one: "$as").
        const named = typeof a?.name === "string" ? a.name : p.name
        if (p.name === AS) {
          // Written at the hub's version: sent as it is (a hub built without a history knows no
          // `$as`). A record a damaged store holds in another shape has no form: it is held.
          const v = typeof a?.v === "number" && typeof a.name === "string" ? a.v : NaN
          form = v === to ? { name: named, args: a!.args } : v < to ? { name: AS, args: p.encoded } : undefined
        } else {
          try {
            const down = h.convert([{ name: p.name, args: p.args }], from, to)
            form = down !== undefined && down.length === 1 ? encodeCmds(older, down)[0] : undefined
          } catch {
            form = undefined
          }
        }
        // Named as the app wrote it (a `$as` by its command), as doc.pending and events name it.
        if (form === undefined) return { out, stuck: named }
        out.push({ clientSeq: p.clientSeq, ...form })
      }
      return { out, stuck: undefined }
    },
    upgradeStoredReplica,
    compat: (hub, app) => compatSession(h, hub, app),
  }
  return h
}

/**
 * The next version of a machine. `prev` is a machine from `defineMachine` (version 1, or any
 * version of a history that starts there) or from an earlier `evolve`.
 */
export const evolve = <S1, A1 extends Record<string, unknown>, S2, A2 extends Record<string, unknown>, C extends CrdtDecls = {}, C2 extends CrdtDecls = {}>(
  prev: Machine<S1, A1, C>,
  def: EvolveDef<S1, A1, S2, A2, C2>,
): Machine<S2, A2, C & C2> => {
  const before = historyOf(prev) as InternalHistory | undefined
  // Each history has its own machine objects: evolving v2 into v3 leaves v2's history as it was.
  const plains = before === undefined ? [prev as Machine<any, any>] : before.plains
  const prevSteps: Step[] = before === undefined ? [] : before.steps
  const last = plains[plains.length - 1]!
  if (def.version !== last.version + 1) {
    throw new TypeError(`Machine "${prev.name}" v${last.version} evolves to v${last.version + 1}, not v${def.version}.`)
  }
  // The previous version's `commands` hold its fields' merge commands: passed on as they are, they are its own.
  const own = Object.fromEntries(Object.entries(def.commands).filter(([n, c]) => !(isMergeName(n) && (last.commands as Record<string, unknown>)[n] === c))) as EvolveDef<S1, A1, S2, A2>["commands"]
  for (const n of Object.keys(own)) if (isReserved(n)) throw new TypeError(`Command name "${n}" is reserved (names starting with "$" are Canon's).`)
  // CRDT fields carry over as they are: their merge commands mean the same in every version, so
  // they go up and down unchanged, and a migration of the plain state leaves their content be.
  // A version may add fields (a machine's first ones too: its state must then be a plain object).
  const added = def.crdt === undefined ? [] : Object.keys(def.crdt)
  for (const n of added) {
    if (Object.prototype.hasOwnProperty.call(last.crdt ?? {}, n)) throw new TypeError(`Machine "${prev.name}" v${def.version}: CRDT field "${n}" is v${last.version}'s already (fields carry over unchanged); declare only the fields this version adds.`)
  }
  const crdt = added.length > 0 ? { ...last.crdt, ...def.crdt } : last.crdt
  for (const n of [...Object.keys(def.upcast ?? {}), ...Object.keys(def.downcast ?? {})]) {
    if (isReserved(n)) throw new TypeError(`Machine "${prev.name}" v${def.version}: "${n}" is Canon's and goes between versions as it is; declare no upcast or downcast for it.`)
  }
  const migrate = def.migrateState as (s: unknown, ctx: MigrationContext) => unknown
  let history!: InternalHistory
  // Migrated as any stored state is (checked: plain, storable, an object where there are fields).
  const initial = def.initial ?? (() => history.migrateState(last.initial(), last.version, def.version, { seq: 0, time: 0, random: () => 0 }) as S2)
  // The new version's own commands and, with fields, their merge commands (as `last.commands` has them).
  const plain = defineMachine({ name: prev.name, version: def.version, initial, commands: own, ...(crdt !== undefined ? { crdt } : {}) } as MachineDef<S2, A2>)
  const oldDefs = last.commands as Record<string, CommandDef<any, any, any>>
  const newDefs = plain.commands as Record<string, CommandDef<any, any, any>>
  const unchanged = new Set<string>()
  for (const n of Object.keys(oldDefs)) {
    if (newDefs[n] !== undefined && commandShape(n, oldDefs[n]!) === commandShape(n, newDefs[n]!)) unchanged.add(n)
  }
  const up = new Map<string, (args: unknown) => unknown>()
  for (const n of Object.keys(oldDefs)) {
    const declared = (def.upcast as Record<string, ((a: unknown) => unknown) | undefined> | undefined)?.[n]
    if (declared !== undefined) up.set(n, declared)
    else if (unchanged.has(n)) up.set(n, (args) => ({ name: n, args }))
    else throw new TypeError(`Machine "${prev.name}" v${def.version}: command "${n}" of v${last.version} was removed or changed; declare its upcast.`)
  }
  const down = new Map<string, (args: unknown) => unknown>()
  for (const n of Object.keys(newDefs)) {
    const declared = (def.downcast as Record<string, ((a: unknown) => unknown) | undefined> | undefined)?.[n]
    if (declared !== undefined) down.set(n, declared)
    else if (unchanged.has(n)) down.set(n, (args) => ({ name: n, args }))
  }
  const allPlains = [...plains, plain]
  const machines = allPlains.map((p) => withBuiltins(p, () => history))
  const steps = [...prevSteps, { from: last.version, to: def.version, up, down, migrateState: migrate }]
  history = Object.assign(buildHistory(prev.name, machines, steps), { steps, plains: allPlains })
  for (const m of machines) registerHistory(m, history)
  const self = machines[machines.length - 1]!
  return self as Machine<S2, A2, C & C2>
}
