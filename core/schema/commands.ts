/**
 * Commands of one version of a machine, decoded and encoded by that version's schemas: what
 * the version history (versions.ts), the hub's serving of several versions (serve.ts) and
 * their migrations share.
 */
import * as Result from "effect/Result"
import type { Rejection } from "../errors.js"
import { schemaMessage, type CompiledCommand, type Machine } from "../machine.js"
import { BATCH, isBuiltin, type Cmd } from "./registry.js"

/** Decodes an encoded command of `machine` (its own commands and CRDT merges, never a built-in). */
export const decodeCmd = (machine: Machine<any, any>, name: string, encoded: unknown): { ok: true; cmd: CompiledCommand<any>; args: unknown } | { ok: false; rejection: Rejection } => {
  const cmd = isBuiltin(name) ? undefined : machine.compiled.get(name)
  if (cmd === undefined) return { ok: false, rejection: { code: "unknown-command", message: `Machine "${machine.name}" v${machine.version} has no command "${name}".` } }
  const r = cmd.decode(encoded)
  if (Result.isFailure(r)) return { ok: false, rejection: { code: "invalid-args", message: `Invalid arguments for "${name}": ${schemaMessage(r.failure)}` } }
  return { ok: true, cmd, args: r.success }
}

/** Encodes decoded commands of `machine` to their wire form. */
export const encodeCmds = (machine: Machine<any, any>, cmds: ReadonlyArray<Cmd>): Cmd[] =>
  cmds.map((c) => {
    const cmd = isBuiltin(c.name) ? undefined : machine.compiled.get(c.name)
    if (cmd === undefined) throw new Error(`A migration of "${machine.name}" gave command "${c.name}", which v${machine.version} does not have.`)
    const r = cmd.encode(c.args)
    if (Result.isFailure(r)) throw new Error(`A migration of "${machine.name}" gave invalid arguments for "${c.name}" (v${machine.version}): ${schemaMessage(r.failure)}`)
    return { name: c.name, args: r.success }
  })

/**
 * Commands an app's migration code gave (an upcast), as `machine` logs them and as it applies
 * them: each encoded (the log's form), then decoded from that form. An upcast returns values no
 * schema has read (`{ name, args: a }` hands on keys the newer schema dropped); what is applied
 * must be what every replay of the log decodes, or the applier's state leaves its log behind.
 * Throws, as encodeCmds does, on a command or arguments this version does not have.
 */
export const settleCmds = (machine: Machine<any, any>, cmds: ReadonlyArray<Cmd>): { readonly log: Cmd[]; readonly apply: Array<{ cmd: CompiledCommand<any>; args: unknown }> } => {
  const log = encodeCmds(machine, cmds)
  const apply = log.map((c) => {
    const d = decodeCmd(machine, c.name, c.args)
    if (!d.ok) throw new Error(`A migration of "${machine.name}" gave arguments for "${c.name}" that v${machine.version} cannot read back once encoded: ${d.rejection.message}`)
    return { cmd: d.cmd, args: d.args }
  })
  return { log, apply }
}

/** One encoded entry body for several encoded commands: itself, a `$batch`, or an empty `$batch`. */
export const asOne = (cmds: ReadonlyArray<Cmd>): Cmd =>
  cmds.length === 1 ? cmds[0]! : { name: BATCH, args: cmds.map((c) => [c.name, c.args]) }
