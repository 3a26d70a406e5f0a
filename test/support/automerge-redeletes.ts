/**
 * Cheap Automerge updates that cost the hub full price (from an attack review): one change
 * inserting `chars` characters, and `copies` changes each deleting all of them again, each by a
 * fresh actor whose only dependency is the insert (about 170 bytes each). Automerge and the
 * hub's checks take a delete of an element another change deleted already (concurrent
 * deletes), so one insert pays for as many full-price deletes as an attacker likes. Each starts
 * right above the insert, as Automerge would (the hub refuses a change starting further up).
 */
import * as A from "@automerge/automerge"
import type { CrdtEngine } from "../../core/crdt/engine.js"

export const insertAndRedeletes = (engine: CrdtEngine<any>, chars: number, copies: number): { insert: Uint8Array[]; redeletes: Uint8Array[][] } => {
  const field = engine.create()
  const updates: Uint8Array[][] = []
  field.onLocalChange((u) => updates.push(u as Uint8Array[]))
  field.handle.splice(0, 0, "x".repeat(chars))
  field.handle.splice(0, chars, "")
  field.destroy()
  const ins = A.decodeChange(updates[0]![0]!)
  const del = A.decodeChange(updates[1]![0]!)
  const redeletes: Uint8Array[][] = []
  for (let r = 0; r < copies; r++) {
    const actor = (0xa000 + r).toString(16).padStart(32, "b")
    redeletes.push([A.encodeChange({ ...del, actor, seq: 1, startOp: del.startOp, deps: [ins.hash], ops: del.ops } as A.DecodedChange)])
  }
  return { insert: updates[0]!, redeletes }
}
