import { decodeArgs, makeContext, runApply, type Machine } from "./machine.js"
import type { JournaledState } from "./journal.js"
import type { Entry } from "./entry.js"
import type { Rejection } from "./errors.js"

/**
 * Applies a logged entry (on load, and on replicas). A logged entry was accepted once, so it
 * should apply again; if it does not (a non-deterministic command, a changed machine), its
 * writes are undone and the rejection returned: checkpoints then expose the divergence.
 */
export const applyLogged = <S>(host: JournaledState<S>, docId: string, machine: Machine<S>, e: Entry): Rejection | undefined => {
  // A `$batch` sent to a build with no version history (it has no `$batch` command): its
  // commands, applied in order as one.
  if (e.name === "$batch" && !machine.compiled.has("$batch") && Array.isArray(e.args)) {
    const journal = host.begin()
    const ctx = makeContext(docId, e.seq, e.time, e.clientId)
    let rejection: Rejection | undefined
    for (const item of e.args as unknown[]) {
      const [name, args] = Array.isArray(item) ? (item as [unknown, unknown]) : [undefined, undefined]
      const d = typeof name === "string" ? decodeArgs(machine, name, args) : { ok: false as const, rejection: { code: "invalid-args", message: "A $batch is a list of [name, args]." } as Rejection }
      rejection = d.ok ? runApply(host, d.cmd, name as string, d.args, ctx) : d.rejection
      if (rejection !== undefined) break
    }
    host.end()
    if (rejection !== undefined) host.undo(journal)
    return rejection
  }
  const decoded = decodeArgs(machine, e.name, e.args)
  if (!decoded.ok) return decoded.rejection
  const journal = host.begin()
  const rejection = runApply(host, decoded.cmd, e.name, decoded.args, makeContext(docId, e.seq, e.time, e.clientId))
  host.end()
  if (rejection !== undefined) host.undo(journal)
  return rejection
}
