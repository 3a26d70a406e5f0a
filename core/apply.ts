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
  const decoded = decodeArgs(machine, e.name, e.args)
  if (!decoded.ok) return decoded.rejection
  const journal = host.begin()
  const rejection = runApply(host, decoded.cmd, e.name, decoded.args, makeContext(docId, e.seq, e.time, e.clientId))
  host.end()
  if (rejection !== undefined) host.undo(journal)
  return rejection
}
