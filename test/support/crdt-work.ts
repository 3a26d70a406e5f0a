/** Helpers of the work-budget tests (core/crdt-docs/work-budget.ts). */
import * as A from "@automerge/automerge"
import type { CrdtDocEngine } from "../../core/crdt-docs/engine.js"

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

/** An engine whose every update weighs 1 s (all of the host's heavy capacity) and whose `prepare` waits for `gate`: a long heavy upload in flight. */
export const stallingEngine = (gate: Promise<void>): CrdtDocEngine<object> => ({
  kind: "stall",
  empty: () => ({}),
  load: () => ({}),
  restore: () => {},
  encode: () => new Uint8Array([1]),
  check: () => ({ ok: true, weight: 1_000_000 }),
  prepare: async () => {
    await gate
    return { ok: true }
  },
  apply: (_doc, updates) => updates.map(() => true),
})
