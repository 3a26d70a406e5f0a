/**
 * CRDT fields of one document instance (a replica's or the authority's): the live field
 * objects beside the plain state, the built-in merge command of each field, and how they take
 * part in hashes and snapshots.
 *
 * Why beside the state and not in it: the plain state is journaled and undone on rebase; a
 * CRDT field never needs undoing. Merging is commutative, associative and idempotent, so
 * `(confirmed ⊔ pending) ⊔ incoming = (confirmed ⊔ incoming) ⊔ pending`: a merge command
 * records nothing in the journal, stays applied across a rebase, and incoming merges go into
 * the live field. Only a confirmed-only view of a field is lost, so a replica checks
 * checkpoints (and writes its local snapshot) only while no merge of its own is unconfirmed.
 *
 * Where they live: keyed by the document's JournaledState (and its root object, so that
 * `hashState(root)` and a state adopted by a new JournaledState find them). A decoded snapshot
 * of a machine with fields carries them under the root key `$crdt` (bytes per field); the key
 * is taken out of the root, and the fields loaded from it, the first time the document's
 * fields are looked up: before any command runs or the app reads the state.
 *
 * State hash of a machine with fields: `hash(canonical([root, [[field, fieldHash], ...]]))`,
 * fields in sorted order (engine.ts says what a field hash commits to). A snapshot's bytes are
 * `canonical({ ...root, $crdt: { field: encoded } })`: compact, but (Automerge's `save()`)
 * not canonical, so for these machines a snapshot's byte hash is not the checkpoint hash.
 */
import * as Schema from "effect/Schema"
import { isBytes } from "../canonical.js"
import { applyCommand, type CommandContext, type CommandDef, type CommandHost, type CompiledCommand, type ReplaceHook } from "../machine.js"
import type { Rejection } from "../errors.js"
import { canonError } from "../errors.js"
import { crdtRejection, type CrdtField, type CrdtFieldDecl, type ValidatedUpdate } from "./engine.js"
import { CRDT_KEY, fieldsOfRoot, registerRoot } from "./roots.js"
import type { CrdtRuntime } from "./runtime.js"

export { CRDT_KEY }

/** The built-in merge command of a field. */
export const crdtCommandName = (field: string): string => `$crdt.${field}`

export type CrdtDecls = Readonly<Record<string, CrdtFieldDecl<any>>>

/** What machine.ts puts on every compiled command of a machine with fields. */
export interface CrdtCommandInfo {
  readonly decls: CrdtDecls
  readonly runtime: CrdtRuntime
  /** Set on a field's merge command. */
  readonly field?: string
}


export class CrdtFields {
  private readonly live = new Map<string, CrdtField>()
  private names: string[]
  /** The hub validated this update (by identity) just before running its merge command. */
  private prevalidated: { readonly args: unknown; readonly update: ValidatedUpdate } | undefined
  /** A field whose library threw half-way through a merge, until it is reloaded. */
  brokenField: string | undefined
  /**
   * Counts what may have changed a field (a load, a merge tried, a local change): a replica's
   * hash of its confirmed state is reused only while this stands still (replica-state.ts).
   */
  changes = 0
  /** Called when a field object is replaced (reload): the app's handle changed. */
  private readonly replaced = new Set<(field: string) => void>()
  private readonly local = new Set<(field: string, update: unknown) => void>()
  private readonly refusedMerges = new Set<(field: string, rejection: Rejection, args: unknown) => void>()
  private readonly unsubscribe = new Map<string, () => void>()
  /**
   * Whether a merge is a change made here, not ordered yet (a replica's own pending merge,
   * set by core/crdt/replica.ts): the field's limits judge it, as the hub's `check` will.
   */
  isLocal: ((args: unknown) => boolean) | undefined
  /**
   * Set by a replica only (core/crdt/replica.ts): whether a merge is one of its own (a pending
   * merge, an unsent local change merged again), not another writer's update the authority
   * ordered. Another writer's that would not merge whole is refused (ValidateOptions `foreign`).
   */
  isOwn: ((args: unknown) => boolean) | undefined

  constructor(public decls: CrdtDecls, encoded?: unknown) {
    this.names = Object.keys(decls).sort()
    this.load(encoded)
  }

  /** Field names, sorted. */
  get fieldNames(): ReadonlyArray<string> {
    return this.names
  }

  field(name: string): CrdtField {
    const f = this.live.get(name)
    if (f === undefined) throw new TypeError(`There is no CRDT field "${name}".`)
    return f
  }

  /** (Re)loads every field from `$crdt` bytes (missing fields start empty). Throws `storage-corrupt`. */
  load(encoded: unknown): void {
    const bytes = (typeof encoded === "object" && encoded !== null ? encoded : {}) as Record<string, unknown>
    const next = new Map<string, CrdtField>()
    for (const name of this.names) {
      const b = bytes[name]
      const engine = this.decls[name]!.engine
      try {
        next.set(name, isBytes(b) ? engine.load(b) : engine.create())
      } catch (e) {
        for (const f of next.values()) f.destroy()
        throw canonError("storage-corrupt", `The CRDT field "${name}" in a stored state cannot be loaded: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
    for (const name of this.names) this.install(name, next.get(name)!)
    this.brokenField = undefined
  }

  /**
   * Takes on the fields of a later version of the machine (`decls` holds these and more): the
   * new ones start empty, as in a document created at that version. Fields are never removed.
   */
  widen(decls: CrdtDecls): void {
    const added = Object.keys(decls).filter((n) => !this.live.has(n))
    this.decls = decls
    this.names = Object.keys(decls).sort()
    for (const name of added) this.install(name, decls[name]!.engine.create())
  }

  /** Replaces one field (a reload after it broke). */
  reloadField(name: string, bytes: Uint8Array | undefined): void {
    const engine = this.decls[name]!.engine
    let field: CrdtField
    try {
      field = bytes === undefined ? engine.create() : engine.load(bytes)
    } catch (e) {
      throw canonError("storage-corrupt", `The CRDT field "${name}" cannot be reloaded from its stored state: ${e instanceof Error ? e.message : String(e)}`)
    }
    this.install(name, field)
    if (this.brokenField === name) this.brokenField = undefined
  }

  private install(name: string, f: CrdtField): void {
    const old = this.live.get(name)
    this.unsubscribe.get(name)?.()
    this.live.set(name, f)
    this.changes++
    this.unsubscribe.set(name, f.onLocalChange((u) => {
      this.changes++
      for (const fn of this.local) fn(name, u)
    }))
    if (old !== undefined) {
      old.destroy()
      for (const fn of this.replaced) fn(name)
    }
  }

  onReplaced(fn: (field: string) => void): () => void {
    this.replaced.add(fn)
    return () => this.replaced.delete(fn)
  }

  /** The app changed a field's handle: `fn(field, update)`. */
  onLocalChange(fn: (field: string, update: unknown) => void): () => void {
    this.local.add(fn)
    return () => this.local.delete(fn)
  }

  /**
   * A merge the authority ordered that this field refuses (a hostile hub's entry: too deep, a
   * key `__proto__`...), or one of the replica's own pending merges it refuses (over the
   * field's update limit): `fn(field, rejection, args)`. The field keeps what it had.
   */
  onRefusedMerge(fn: (field: string, rejection: Rejection, args: unknown) => void): () => void {
    this.refusedMerges.add(fn)
    return () => this.refusedMerges.delete(fn)
  }

  /**
   * The hub's check of a peer's update (size, decoding, structure, ownership, no clock
   * overlap, dependencies present), without changing the field. On success the merge command
   * that follows reuses the result.
   */
  check(field: string, args: unknown, clientId: string): Rejection | undefined {
    const r = this.field(field).validate(args, { clientId, trusted: false })
    if (!r.ok) return r.rejection
    this.prevalidated = { args, update: r.update }
    return undefined
  }

  /** What the fields hold in memory (CrdtField `weight`), summed. */
  weight(): number {
    let n = 0
    for (const f of this.live.values()) n += f.weight?.() ?? 0
    return n
  }

  /** For the update `check` just passed: what merging it can add to `weight` (CrdtField `weighs`). */
  weighs(field: string, args: unknown): number {
    const pre = this.prevalidated
    return pre !== undefined && pre.args === args ? this.field(field).weighs?.(pre.update) ?? 0 : 0
  }

  /** Whether a field tells tombstones (CrdtField `fills`): only then does the document keep the size bound's reserve. */
  makesTombstones(): boolean {
    return this.names.some((n) => this.live.get(n)!.fills !== undefined)
  }

  /** Whether the update `check` just passed holds no content (CrdtField `fills`: a tombstone or a deletion): it may use the size bound's reserve. */
  fills(field: string, args: unknown): boolean {
    const pre = this.prevalidated
    return pre !== undefined && pre.args === args && this.field(field).fills?.(pre.update) === true
  }

  /** For the update `check` just passed, if it has content: what it can add beyond three times its bytes (CrdtField `extraGrowth`), else 0. */
  extraGrowth(field: string, args: unknown): number {
    const pre = this.prevalidated
    return pre !== undefined && pre.args === args ? this.field(field).extraGrowth?.(pre.update) ?? 0 : 0
  }

  /** For the update `check` just passed, if it only deletes: what merging it can add less what it frees (CrdtField `growth`). */
  growth(field: string, args: unknown): number | undefined {
    const pre = this.prevalidated
    return pre !== undefined && pre.args === args ? this.field(field).growth?.(pre.update) : undefined
  }

  /** Runs a merge command: decode (unless the hub just checked it), apply; a library throw breaks the field. */
  merge(field: string, args: unknown, clientId: string): Rejection | undefined {
    const f = this.field(field)
    this.changes++
    let update: ValidatedUpdate
    const pre = this.prevalidated
    this.prevalidated = undefined
    if (pre !== undefined && pre.args === args) {
      update = pre.update
    } else {
      const isOwn = this.isOwn
      const r = f.validate(args, {
        clientId,
        trusted: true,
        local: () => this.isLocal?.(args) === true,
        ...(isOwn !== undefined ? { foreign: () => !isOwn(args) } : {}),
      })
      if (!r.ok) {
        for (const fn of this.refusedMerges) fn(field, r.rejection, args)
        return r.rejection
      }
      update = r.update
    }
    try {
      f.apply([update])
    } catch (e) {
      // Half-applied: nothing of the field can be trusted until it is reloaded.
      this.brokenField = field
      return crdtRejection("crdt-failed", `Merging an update into the CRDT field "${field}" failed (${e instanceof Error ? e.message : String(e)}); the field is reloaded.`).rejection
    }
    if (f.broken) {
      this.brokenField = field
      return crdtRejection("crdt-failed", `The update left the CRDT field "${field}" unusable; the field is reloaded.`).rejection
    }
    return undefined
  }

  /** The value whose canonical bytes are a snapshot of `root` with these fields. */
  snapshotOf(root: unknown): unknown {
    return snapshotValue(root, this)
  }

  /** Field hashes in sorted field order. */
  hashes(): Array<[string, string]> {
    return this.names.map((n) => [n, this.live.get(n)!.hash()])
  }

  /** Each field's compact bytes, for `$crdt`. */
  encode(): Record<string, Uint8Array> {
    const out: Record<string, Uint8Array> = {}
    for (const n of this.names) out[n] = this.live.get(n)!.encode()
    return out
  }

  destroy(): void {
    for (const u of this.unsubscribe.values()) u()
    for (const f of this.live.values()) f.destroy()
    this.local.clear()
    this.replaced.clear()
    this.refusedMerges.clear()
  }
}

/** What compileFields adds to a machine: its properties, and what its fingerprint covers. */
export interface CompiledFields {
  readonly machine: { readonly commands: Record<string, CommandDef<any, unknown, unknown>>; readonly crdtRuntime: CrdtRuntime }
  readonly kinds: unknown
}

/**
 * Adds each field's merge command to a machine being defined (to `compiled`, and to the
 * machine's `commands`) and marks every compiled command so runApply finds the fields.
 * Returns what the machine gets (its commands with the merge commands, this runtime) and
 * what its fingerprint covers: each field's name and kind.
 */
export const compileFields = (
  def: { readonly name: string; readonly crdt?: CrdtDecls; readonly commands: Record<string, CommandDef<any, any, any>> },
  compiled: Map<string, CompiledCommand<any>>,
): CompiledFields => {
  const decls = def.crdt!
  const runtime = Object.values(decls)[0]!.runtime
  const commands: Record<string, CommandDef<any, unknown, unknown>> = { ...def.commands }
  const kinds = Object.keys(decls).sort().map((field) => {
    if (!/^[a-zA-Z0-9_]{1,64}$/.test(field)) throw new TypeError(`CRDT field "${field}" of machine "${def.name}" must be 1-64 letters, digits or '_'.`)
    const engine = decls[field]!.engine
    // Never called: runApply merges instead (the field is not in the state).
    commands[crdtCommandName(field)] = { args: engine.args, apply: () => undefined }
    compiled.set(crdtCommandName(field), {
      apply: () => undefined,
      decode: Schema.decodeUnknownResult(engine.args),
      encode: Schema.encodeUnknownResult(engine.args),
      crdt: { decls, field, runtime },
    })
    return [field, engine.kind]
  })
  for (const [name, c] of compiled) if (c.crdt === undefined) compiled.set(name, { ...c, crdt: { decls, runtime } })
  return { machine: { commands, crdtRuntime: runtime }, kinds }
}

const reservedKey = (name: string): string => `Command "${name}": "$crdt" is reserved for CRDT fields.`

/**
 * A state a command returns must not carry `$crdt` (refused as its own ctx.reject would be,
 * before the state is adopted) and must lead to the same fields.
 */
const replaceChecked: ReplaceHook = (host, cmd, name, ctx, next) => {
  if (typeof next === "object" && next !== null && CRDT_KEY in next) ctx.reject(reservedKey(name))
  host.replaceRoot(next)
  fieldsOf(cmd.crdt!.decls, host)
}

/**
 * runApply for a machine with fields: the fields are found (or loaded from the root's `$crdt`)
 * before any command reads the root; a field's merge command merges and writes nothing to the
 * journal; any other command must leave `$crdt` alone.
 */
export const runCommand = (host: CommandHost, cmd: CompiledCommand<any>, name: string, args: unknown, ctx: CommandContext): Rejection | undefined => {
  const { decls, field } = cmd.crdt!
  const fields = fieldsOf(decls, host)
  if (field !== undefined) return fields.merge(field, args, ctx.clientId)
  // Written through the draft (`s[key] = value` with a key from the arguments): a snapshot
  // replaces that key with the fields' bytes, so what was acknowledged would be lost there.
  return applyCommand(host, cmd, name, args, ctx, replaceChecked)
    ?? (Object.prototype.hasOwnProperty.call(host.root, CRDT_KEY) ? { code: "rejected", message: reservedKey(name) } : undefined)
}

// ---- where a document's fields are found ----

const byHost = new WeakMap<object, CrdtFields>()

/**
 * The fields of the document held by `host` (a JournaledState), made on first use from the
 * root's `$crdt` key (removed from the root) or empty. Also found by a new host adopting the
 * same root object (a replica built on a state its client replayed).
 */
export const fieldsOf = (decls: CrdtDecls, host: { readonly root: unknown }): CrdtFields => {
  const root = host.root as Record<string, unknown>
  if (typeof root !== "object" || root === null || Array.isArray(root)) {
    throw new TypeError("A machine with CRDT fields must keep its state a plain object (its snapshots add the `$crdt` key).")
  }
  let f = byHost.get(host)
  if (f === undefined) {
    f = fieldsOfRoot(root) as CrdtFields | undefined
    if (f === undefined) {
      const stored = root[CRDT_KEY]
      // Before any command or view reads the root: the key is not state.
      if (stored !== undefined) delete root[CRDT_KEY]
      f = new CrdtFields(decls, stored)
    }
    byHost.set(host, f)
  }
  // A later version's command on a document loaded at an earlier one (its migration just ran):
  // the fields that version added join, empty.
  if (f.decls !== decls && f.fieldNames.length < Object.keys(decls).length) f.widen(decls)
  registerRoot(root, f)
  return f
}

/** Forgets the fields of a host (its document closed or its fields were replaced). */
export const detachFields = (host: object): void => {
  byHost.delete(host)
}

/** The value whose canonical bytes are a snapshot of a state with fields. */
export const snapshotValue = (root: unknown, fields: CrdtFields): unknown =>
  ({ ...(root as Record<string, unknown>), [CRDT_KEY]: fields.encode() })

/** Takes the `$crdt` key out of a freshly decoded state (a snapshot installed on a replica). */
export const takeEncodedFields = (root: unknown): unknown => {
  if (typeof root !== "object" || root === null) return undefined
  const r = root as Record<string, unknown>
  const stored = r[CRDT_KEY]
  if (stored !== undefined) delete r[CRDT_KEY]
  return stored
}
