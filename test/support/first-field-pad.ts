/** A plain v1 pad whose v2 gives it its first CRDT field (test/schema-crdt-first-field-cli.test.ts; a --machines module). */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"
import { yText } from "../../adapters/yjs/index.js"
import { evolve, historyOf } from "../../core/schema/versions.js"

type Pad = { title: string }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }
const PlainV1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "" }), commands: { rename } })
export const PadV2 = evolve(PlainV1, { version: 2, crdt: { notes: yText() }, migrateState: (s: Pad): Pad => ({ title: s.title }), commands: { rename } })
export const V1 = historyOf(PadV2)!.at(1) as typeof PlainV1
export const machines = [PadV2]
