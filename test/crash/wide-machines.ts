/**
 * The machines of the wide crash scenario (wide-crash.ts):
 *
 * - `Notes`: ordered `record` commands whose state keeps every (clientId, token) with the seq
 *   it was applied at (so a lost or doubled command shows in the state itself, as in
 *   ledger-machine.ts), beside two CRDT fields: a Yjs text (`text`) and an Automerge text
 *   (`am`) the clients type unique markers into.
 * - `TodoV1` / `TodoV2` of test/support/versioned-machines.ts: the hub is restarted at v2
 *   half-way through (a `$migrate` in the log of each versioned document it loads), while
 *   the clients stay at the version they were built with.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"
import { yText } from "../../adapters/yjs/index.js"
import { automergeText } from "../../adapters/automerge/index.js"

export interface NotesState {
  /** clientId -> token -> the seq it was applied at. */
  applied: Record<string, Record<string, number>>
  /** "clientId/token@firstSeq,againSeq" for every second application (must stay empty). */
  dups: string[]
  count: number
  /** Large strings some commands carry (a big document, so snapshot streams take several windows). */
  pads: Record<string, string>
}

export const Notes = defineMachine({
  name: "crash-notes",
  version: 1,
  initial: (): NotesState => ({ applied: {}, dups: [], count: 0, pads: {} }),
  crdt: { text: yText(), am: automergeText() },
  commands: {
    record: {
      args: Schema.Struct({ token: Schema.Number, pad: Schema.optional(Schema.String) }),
      apply: (s, a, ctx) => {
        let mine = s.applied[ctx.clientId]
        if (mine === undefined) {
          s.applied[ctx.clientId] = {}
          mine = s.applied[ctx.clientId]!
        }
        const key = String(a.token)
        const first = mine[key]
        if (first !== undefined) s.dups.push(`${ctx.clientId}/${key}@${first},${ctx.seq}`)
        else mine[key] = ctx.seq
        s.count++
        if (a.pad !== undefined) s.pads[`${ctx.clientId}/${key}`] = a.pad
      },
    },
  },
})

export { TodoV1, TodoV2 } from "../support/versioned-machines.js"
