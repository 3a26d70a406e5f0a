/** Helpers of the work-budget tests (core/crdt-docs/work-budget.ts). */
import * as A from "@automerge/automerge"

/** An Automerge document chunk of `n` empty changes by `actor`: a few hundred bytes standing for `n` changes of work. */
export const emptyChangesChunk = (n: number, actor: string): Uint8Array => {
  let d = A.init<unknown>({ actor })
  for (let i = 0; i < n; i++) d = A.emptyChange(d)
  return A.save(d)
}

/** Lets promise callbacks and setImmediate turns (the engines' slices) run `turns` times without moving virtual time. */
export const settle = async (turns = 50): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r))
}
