/**
 * Machines: the app's state and the deterministic commands that change it.
 *
 * A command has an argument schema (Effect `Schema`) and a pure `apply(state, args, ctx)`.
 * `apply` may mutate `state` (it is a recorded draft, see journal.ts) or return a new state.
 * `ctx` is the only door to the outside world: the entry's `seq`, the authority's `time`,
 * the submitting `clientId`, a seeded `random()`, and `reject(reason)`.
 *
 * @example
 * ```ts
 * import * as Schema from "effect/Schema"
 * import { defineMachine } from "canon"
 *
 * export const Counter = defineMachine({
 *   name: "counter",
 *   version: 1,
 *   initial: () => ({ value: 0 }),
 *   commands: {
 *     add: {
 *       args: Schema.Struct({ by: Schema.Number }),
 *       apply: (state, { by }, ctx) => {
 *         if (by === 0) ctx.reject("Adding zero changes nothing.")
 *         state.value += by
 *       },
 *     },
 *   },
 * })
 * ```
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import { encodeCanonical } from "./canonical.js"
import { hashBytes } from "./hash.js"
import { CanonError, type Rejection, errorText } from "./errors.js"
import { entryRandom } from "./random.js"
import { MACHINE_NAME_PATTERN, commandNameProblem } from "./limits.js"
// Types only: the CRDT field code comes with the field declarations (core/crdt/runtime.ts).
import type { CrdtCommandInfo, CrdtDecls } from "./crdt/fields.js"
import type { CrdtRuntime } from "./crdt/runtime.js"

/** What a command may know about the world. */
export interface CommandContext {
  /** The seq the entry has (or, while optimistic, is expected to have). */
  readonly seq: number
  /** Milliseconds since the epoch, stamped by the authority (a local estimate while optimistic). */
  readonly time: number
  /** The client that submitted the command. */
  readonly clientId: string
  /** Deterministic random numbers in [0, 1), seeded from the document and seq. */
  random(): number
  /** Refuses the command: its writes are undone and the submitter gets `reason`. */
  reject(reason: string): never
}

export interface CommandDef<S, A, I = unknown> {
  readonly args: Schema.Codec<A, I>
  readonly apply: (state: S, args: A, ctx: CommandContext) => S | void
}

/** Declares one command outside a machine (give `S` explicitly); inside, use `{ args, apply }`. */
export const command = <S, A, I>(
  args: Schema.Codec<A, I>,
  apply: (state: S, args: A, ctx: CommandContext) => S | void,
): CommandDef<S, A, I> => ({ args, apply })

export interface MachineDef<S, A extends Record<string, unknown>> {
  /** Stable name, used on the wire and in storage. */
  readonly name: string
  /** Integer version of the machine's commands and state. */
  readonly version: number
  /** The state of a new document. Must return plain data (see canonical.ts). */
  readonly initial: () => S
  /** Commands by name; each one's argument type is inferred from its schema. */
  readonly commands: { readonly [K in keyof A]: CommandDef<S, A[K], any> }
  /**
   * CRDT fields beside the plain state (core/crdt/fields.ts), e.g. `{ body: yText() }` from
   * `canon/yjs`. Each gets a built-in merge command `$crdt.<field>`; commands never read them.
   */
  readonly crdt?: CrdtDecls
}

/** Compiled command: its schema codecs built once. */
export interface CompiledCommand<S> {
  readonly apply: (state: S, args: unknown, ctx: CommandContext) => S | void
  readonly decode: (encoded: unknown) => Result.Result<unknown, Schema.SchemaError>
  readonly encode: (args: unknown) => Result.Result<unknown, Schema.SchemaError>
  /** Set on every command of a machine with CRDT fields (see runApply). */
  readonly crdt?: CrdtCommandInfo
}

export interface Machine<S = any, A extends Record<string, unknown> = Record<string, any>, C extends CrdtDecls = any> extends MachineDef<S, A> {
  readonly crdt?: C
  /** @internal the CRDT field code, when the machine has fields */
  readonly crdtRuntime?: CrdtRuntime
  /** @internal compiled commands by name */
  readonly compiled: ReadonlyMap<string, CompiledCommand<S>>
  /**
   * Hash of the machine's name, version and the wire (encoded) side of every command's
   * schema. Two peers with the same version but different fingerprints disagree on what a
   * command means: the hub refuses the newcomer with `schema-mismatch`.
   */
  readonly fingerprint: string
}

/** A check by its representation (id and payload: Effect's built-in checks have one), else by what it expects. */
const checkShape = (check: SchemaAST.Check<unknown>): unknown =>
  check._tag === "FilterGroup"
    ? ["group", check.checks.map(checkShape)]
    : [check.annotations?.representation?.id ?? check.annotations?.expected ?? "filter", check.annotations?.representation?.payload ?? null]

/**
 * A schema as plain data, for the fingerprint: each node's kind, optionality, checks and
 * encoding chain (so `NumberFromString` differs from `String`), literal values, property
 * names, elements and members; descriptions and titles are left out. Effect's
 * `Schema.toRepresentation` describes it too, but pins about 17 KB of minified code into
 * every browser bundle. A recursive schema refers back by depth.
 */
const schemaShape = (ast: SchemaAST.AST, open: ReadonlyArray<SchemaAST.AST>): unknown => {
  const back = open.indexOf(ast)
  if (back >= 0) return ["recursive", open.length - back]
  const inner = [...open, ast]
  const recur = (a: SchemaAST.AST) => schemaShape(a, inner)
  const head = [ast._tag, ast.context?.isOptional === true, (ast.checks ?? []).map(checkShape), (ast.encoding ?? []).map((link) => recur(link.to))]
  switch (ast._tag) {
    case "Literal": return [...head, typeof ast.literal, String(ast.literal)]
    case "UniqueSymbol": return [...head, String(ast.symbol)]
    case "Enum": return [...head, ast.enums.map(([name, value]) => [name, typeof value, String(value)])]
    case "TemplateLiteral": return [...head, ast.parts.map(recur)]
    case "Arrays": return [...head, ast.elements.map(recur), ast.rest.map(recur)]
    case "Objects": return [...head, ast.propertySignatures.map((p) => [String(p.name), recur(p.type)]), ast.indexSignatures.map((i) => [recur(i.parameter), recur(i.type)])]
    case "Union": return [...head, ast.types.map(recur)]
    case "Suspend": return [...head, recur(ast.thunk())]
    case "Declaration": {
      const r = ast.annotations?.representation as { readonly id: string; readonly payload: unknown } | undefined
      return [...head, r === undefined ? (ast.annotations?.identifier ?? ast.annotations?.expected ?? null) : [r.id, r.payload], ast.typeParameters.map(recur)]
    }
    default: return head
  }
}

const describeCommands = (commands: Record<string, CommandDef<any, unknown, unknown>>): unknown => {
  const out: Record<string, unknown> = {}
  for (const name of Object.keys(commands).sort()) {
    try {
      out[name] = JSON.parse(JSON.stringify(schemaShape(commands[name]!.args.ast, [])))
    } catch {
      // A schema this cannot describe still has a name: fingerprint what we can.
      out[name] = null
    }
  }
  return out
}

/** The state type of a machine. */
export type StateOf<M> = M extends Machine<infer S, any> ? S : never
/** Command names of a machine. */
export type CommandName<M> = M extends Machine<any, infer A> ? keyof A & string : never
/** Argument type (decoded) of a machine's command. */
export type ArgsOf<M, K extends string> = M extends Machine<any, infer A> ? A[K] : never

/** Defines a machine. Validates the definition and compiles the argument schemas once. */
export const defineMachine = <S, A extends Record<string, unknown>, C extends CrdtDecls = {}>(def: MachineDef<S, A> & { readonly crdt?: C }): Machine<S, A, C> => {
  if (!MACHINE_NAME_PATTERN.test(def.name)) {
    throw new TypeError(`Machine name "${def.name}" must be 1-64 letters, digits, _ . or -.`)
  }
  if (!Number.isInteger(def.version) || def.version < 1) {
    throw new TypeError(`Machine "${def.name}" version ${def.version} is not an integer from 1.`)
  }
  const compiled = new Map<string, CompiledCommand<S>>()
  for (const [name, cmd] of Object.entries(def.commands) as [string, CommandDef<S, unknown, unknown>][]) {
    compiled.set(name, {
      apply: cmd.apply as CompiledCommand<S>["apply"],
      decode: Schema.decodeUnknownResult(cmd.args as Schema.Codec<unknown, unknown>),
      encode: Schema.encodeUnknownResult(cmd.args as Schema.Codec<unknown, unknown>),
    })
  }
  // CRDT fields: their runtime adds a merge command per field and marks every command for runApply.
  const fields = def.crdt !== undefined ? Object.values(def.crdt)[0]?.runtime.compileFields(def, compiled) : undefined
  // Every name travels on the wire, where a longer one is refused (core/limits.ts).
  for (const name of compiled.keys()) {
    const problem = commandNameProblem(name)
    if (problem !== undefined) throw new TypeError(`Machine "${def.name}" command "${name.slice(0, 40)}…": ${problem}`)
  }
  let fingerprint: string | undefined
  return {
    ...def,
    ...fields?.machine,
    compiled,
    get fingerprint() {
      // Described once. Machines without fields keep the fingerprint they always had.
      return (fingerprint ??= hashBytes(encodeCanonical([def.name, def.version, describeCommands(def.commands as Record<string, CommandDef<S, unknown, unknown>>), ...(fields === undefined ? [] : [fields.kinds])])))
    },
  } as Machine<S, A, C>
}

/** Thrown by ctx.reject; caught by the runner. */
class RejectSignal {
  constructor(readonly reason: string) {}
}

/**
 * The ctx of one application of a command. A class, not a closure per call: applying a
 * command must not allocate functions (it runs millions of times per second on replays).
 */
class Context implements CommandContext {
  private rng: (() => number) | undefined
  /** The command looked at `time` (a replica's fast path needs the same time then: replica-state.ts). */
  timeRead = false
  constructor(private readonly docId: string, readonly seq: number, private readonly at: number, readonly clientId: string) {}
  get time(): number {
    this.timeRead = true
    return this.at
  }
  random(): number {
    return (this.rng ??= entryRandom(this.docId, this.seq))()
  }
  reject(reason: string): never {
    throw new RejectSignal(String(reason))
  }
}

/** Makes the ctx for one application of a command. */
export const makeContext = (docId: string, seq: number, time: number, clientId: string): CommandContext & { readonly timeRead: boolean } =>
  new Context(docId, seq, time, clientId)

/** The argument message of a schema failure, on one line. */
export const schemaMessage = (e: Schema.SchemaError): string => e.message.replace(/\s*\n\s*/g, " ")

/** The rejection of arguments that fail the command `name`'s schema. */
export const invalidArgs = (name: string, e: Schema.SchemaError): Rejection => ({ code: "invalid-args", message: `Invalid arguments for "${name}": ${schemaMessage(e)}` })

/** The rejection of a command `machine` does not have. */
export const unknownCommand = (machine: Machine<any, any>, name: string): Rejection => ({ code: "unknown-command", message: `Machine "${machine.name}" v${machine.version} has no command "${name}".` })

/** Checks and decodes the wire form of a command's arguments. */
export const decodeArgs = <S>(
  machine: Machine<S>,
  name: string,
  encoded: unknown,
): { readonly ok: true; readonly cmd: CompiledCommand<S>; readonly args: unknown } | { readonly ok: false; readonly rejection: Rejection } => {
  const cmd = machine.compiled.get(name)
  if (cmd === undefined) {
    return { ok: false, rejection: unknownCommand(machine, name) }
  }
  const r = cmd.decode(encoded)
  if (Result.isFailure(r)) {
    return { ok: false, rejection: invalidArgs(name, r.failure) }
  }
  return { ok: true, cmd, args: r.success }
}

/**
 * Runs `cmd.apply` on the draft of `host`. Returns undefined on success or the rejection:
 * `rejected` (ctx.reject), `state-unencodable` (the command wrote something the state model
 * refuses: see journal.ts; the write threw at once, so nothing of it is in the state) or
 * `command-failed` (anything else it threw). On a rejection the caller undoes the journal:
 * the caller owns begin/end so it can keep the records (replica) or drop them (authority).
 */
export const runApply = <S>(
  host: { readonly root: S; draft(): S; replaceRoot(next: S): void },
  cmd: CompiledCommand<S>,
  name: string,
  args: unknown,
  ctx: CommandContext,
): Rejection | undefined =>
  // A machine with CRDT fields runs its commands through their runtime (core/crdt/fields.ts):
  // it finds the fields first, merges a field's merge command, keeps `$crdt` out of the state.
  cmd.crdt !== undefined ? cmd.crdt.runtime.runCommand(host, cmd, name, args, ctx) : applyCommand(host, cmd, name, args, ctx)

/** The journaled state a command runs on. */
export interface CommandHost {
  readonly root: unknown
  draft(): unknown
  replaceRoot(next: unknown): void
}

/**
 * Replaces the host's root with the state a command returned, checking it first (the CRDT
 * runtime: no `$crdt` in it). A module function, not a wrapper per command: replays apply
 * hundreds of thousands.
 */
export type ReplaceHook = (host: CommandHost, cmd: CompiledCommand<any>, name: string, ctx: CommandContext, next: unknown) => void

/** runApply's application of a command on the draft (the CRDT runtime's too). */
export const applyCommand = <S>(
  host: { draft(): S; replaceRoot(next: S): void },
  cmd: CompiledCommand<S>,
  name: string,
  args: unknown,
  ctx: CommandContext,
  replacing?: ReplaceHook,
): Rejection | undefined => {
  try {
    const out = cmd.apply(host.draft(), args, ctx)
    if (out !== undefined) {
      if (replacing !== undefined) replacing(host as CommandHost, cmd, name, ctx, out)
      else host.replaceRoot(out)
    }
    return undefined
  } catch (e) {
    if (e instanceof RejectSignal) return { code: "rejected", message: e.reason }
    if (e instanceof CanonError && e.code === "state-unencodable") return { code: "state-unencodable", message: `Command "${name}": ${e.message}` }
    const detail = errorText(e)
    return { code: "command-failed", message: `Command "${name}" threw: ${detail}` }
  }
}
