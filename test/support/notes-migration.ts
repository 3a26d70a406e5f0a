/**
 * A machine whose v2 `migrateState` throws on some v1 states: notes v1 keeps text, v2 keeps
 * text and a number parsed from it, and the parse refuses text starting with "!" (a helper
 * that refuses a value the old schema accepts). For the tests of a migration failing on a
 * stored state (held documents, replica upgrades, compat mode).
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"
import { evolve } from "../../core/schema/versions.js"

export type NotesV1State = { notes: Record<string, string> }
export type NotesV2State = { notes: Record<string, { text: string; n: number }> }

export const NotesV1 = defineMachine({
  name: "notes",
  version: 1,
  initial: (): NotesV1State => ({ notes: {} }),
  commands: { put: { args: Schema.Struct({ id: Schema.String, text: Schema.String }), apply: (s: NotesV1State, a) => { s.notes[a.id] = a.text } } },
})

/** v2's `put` (every v2 of the notes machine has the same command schemas). */
export const putV2 = { args: Schema.Struct({ id: Schema.String, text: Schema.String }), apply: (s: NotesV2State, a: { id: string; text: string }) => { s.notes[a.id] = { text: a.text, n: 0 } } }

/** Throws on a text starting with "!". */
export const parseNote = (t: string): number => {
  if (t.startsWith("!")) throw new Error(`cannot parse ${t}`)
  return t.length
}

/** v2 whose migration throws on a note starting with "!". */
export const NotesV2Throws = evolve(NotesV1, {
  version: 2,
  migrateState: (s: NotesV1State): NotesV2State => ({ notes: Object.fromEntries(Object.entries(s.notes).map(([k, t]) => [k, { text: t, n: parseNote(t) }])) }),
  commands: { put: putV2 },
})
