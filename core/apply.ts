import { decodeArgs, makeContext, runApply, type Machine } from "./machine.js"
import type { JournaledState } from "./journal.js"
import type { Entry } from "./entry.js"
import type { Rejection } from "./errors.js"

const notAList: Rejection = { code: "invalid-args", message: "A $batch is a list of [name, args]." }

/**
 * Applies a logged entry (on load, and on replicas). A logged entry was accepted once, so it
 * should apply again; if it does not (a non-deterministic command, a changed machine), its
 * writes are undone and the rejection returned: checkpoints then expose the divergence.
 */
export const applyLogged = <S>(host: JournaledState<S>, docId: string, machine: Machine<S>, e: Entry): Rejection | undefined => {
  // A `$batch` sent to a build with no version history (it has no `$batch` command): its
  // commands, applied in order as one. Any other entry is a batch of one.
  const commands = e.name === "$batch" && !machine.compiled.has("$batch") && Array.isArray(e.args) ? (e.args as unknown[]) : [[e.name, e.args]]
  const ctx = makeContext(docId, e.seq, e.time, e.clientId)
  const journal = host.begin()
  let rejection: Rejection | undefined
  for (const item of commands) {
    const [name, args] = Array.isArray(item) ? (item as [unknown, unknown]) : []
    const d = typeof name === "string" ? decodeArgs(machine, name, args) : { ok: false as const, rejection: notAList }
    rejection = d.ok ? runApply(host, d.cmd, name as string, d.args, ctx) : d.rejection
    if (rejection !== undefined) break
  }
  host.end()
  if (rejection !== undefined) host.undo(journal)
  return rejection
}
