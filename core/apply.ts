import { decodeArgs, makeContext, runApply, type CommandContext, type Machine } from "./machine.js"
import type { JournaledState } from "./journal.js"
import type { Entry } from "./entry.js"
import type { Rejection } from "./errors.js"

/**
 * Applies a logged entry (on load, and on replicas). A logged entry was accepted once, so it
 * should apply again; if it does not (a non-deterministic command, a changed machine), its
 * writes are undone and the rejection returned: checkpoints then expose the divergence.
 */
export const applyLogged = <S>(host: JournaledState<S>, docId: string, machine: Machine<S>, e: Entry): Rejection | undefined => {
  const ctx = makeContext(docId, e.seq, e.time, e.clientId)
  const journal = host.begin()
  let rejection: Rejection | undefined
  // A `$batch` sent to a build with no version history (it has no `$batch` command): its
  // commands, applied in order as one.
  if (e.name === "$batch" && !machine.compiled.has("$batch") && Array.isArray(e.args)) {
    for (const item of e.args as unknown[]) {
      const [name, args] = Array.isArray(item) ? (item as [unknown, unknown]) : []
      if ((rejection = run(host, machine, name, args, ctx)) !== undefined) break
    }
  } else rejection = run(host, machine, e.name, e.args, ctx)
  host.end()
  if (rejection !== undefined) host.undo(journal)
  return rejection
}

/** Decodes and applies one command (a function, not a closure: this runs for every entry replayed). */
const run = <S>(host: JournaledState<S>, machine: Machine<S>, name: unknown, args: unknown, ctx: CommandContext): Rejection | undefined => {
  if (typeof name !== "string") return { code: "invalid-args", message: "A $batch is a list of [name, args]." }
  const d = decodeArgs(machine, name, args)
  return d.ok ? runApply(host, d.cmd, name, d.args, ctx) : d.rejection
}
