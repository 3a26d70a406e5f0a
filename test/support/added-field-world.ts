/**
 * A machine with a v3 chain of added CRDT fields, and a small world of hubs and apps on one
 * store (test/schema-crdt-added-field-*.test.ts).
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"
import { yText } from "../../adapters/yjs/index.js"
import { automergeText } from "../../adapters/automerge/index.js"
import { evolve, historyOf } from "../../core/schema/versions.js"
import { COMPACTING, versionsWorld } from "./versions-world.js"

export const DOC = "p"
export type Pad = { title: string }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }

export const A1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "" }), crdt: { body: yText() }, commands: { rename } })
export const A2 = evolve(A1, { version: 2, crdt: { notes: yText() }, migrateState: (s: Pad): Pad => ({ title: s.title }), commands: { rename } })
export const A3 = evolve(A2, { version: 3, crdt: { log: automergeText() }, migrateState: (s: Pad): Pad => ({ title: s.title }), commands: { rename } })
/** v1 and v2 as the v3 build has them. */
export const V1 = historyOf(A3)!.at(1) as typeof A1
export const V2 = historyOf(A3)!.at(2) as typeof A2

export { COMPACTING }

export type AnyPad = typeof A1 | typeof A2 | typeof A3

export const world = (snapshots?: typeof COMPACTING, seed = 11) => versionsWorld(DOC, snapshots, seed)
