/**
 * A note with a Yjs text field, in two versions: v2 adds tags (shown to v1 as nothing). What
 * the tests of versions with CRDT fields share (test/schema-crdt-fields*.test.ts).
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"
import { yText } from "../../adapters/yjs/index.js"
import { evolve, historyOf } from "../../core/schema/versions.js"

export const commandsV1 = {
  rename: { args: Schema.Struct({ title: Schema.String }), apply: (s: { title: string }, { title }: { readonly title: string }) => { s.title = title } },
}

export const NoteV1 = defineMachine({ name: "note", version: 1, initial: () => ({ title: "" }), crdt: { body: yText() }, commands: commandsV1 })

export type Note2 = { title: string; tags: string[] }

/** Every state v2's migration was given, in order (a test empties it). */
export const migrated: unknown[] = []

export const NoteV2 = evolve(NoteV1, {
  version: 2,
  migrateState: (s) => {
    migrated.push(s)
    return { title: s.title, tags: [] as string[] }
  },
  commands: {
    rename: { args: Schema.Struct({ title: Schema.String }), apply: (s: Note2, { title }) => { s.title = title } },
    tag: { args: Schema.Struct({ tag: Schema.String }), apply: (s: Note2, { tag }) => { s.tags.push(tag) } },
  },
  downcast: { tag: () => [] }, // v1 shows no tags
})

/** v1 as the history has it (a build with the whole history serves v1 apps with it). */
export const NoteV1InHistory = historyOf(NoteV2)!.at(1) as typeof NoteV1

/** v2 as above, and a Yjs `notes` field it adds (test/schema-crdt-added-field*.test.ts). */
export const NoteV2WithNotes = evolve(NoteV1, {
  version: 2,
  crdt: { notes: yText() },
  migrateState: (s) => ({ title: s.title, tags: [] as string[] }),
  commands: {
    rename: { args: Schema.Struct({ title: Schema.String }), apply: (s: Note2, { title }) => { s.title = title } },
    tag: { args: Schema.Struct({ tag: Schema.String }), apply: (s: Note2, { tag }) => { s.tags.push(tag) } },
  },
  downcast: { tag: () => [] },
})
