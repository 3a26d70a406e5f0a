/**
 * The machine of the snapshot crash scenario: its state records every command it applied,
 * by (clientId, token), with the seq it was applied at. A command that is lost, or applied
 * twice, shows in the state itself, so it is checked even after the log behind a snapshot
 * was compacted away. Each command carries padding so the log grows fast (snapshots and
 * compactions come often); the state keeps none of it.
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../../core/index.js"

export interface LedgerState {
  /** clientId -> token -> the seq it was applied at. */
  applied: Record<string, Record<string, number>>
  /** "clientId/token@firstSeq,againSeq" for every second application (must stay empty). */
  dups: string[]
  count: number
}

export const Ledger = defineMachine({
  name: "ledger",
  version: 1,
  initial: (): LedgerState => ({ applied: {}, dups: [], count: 0 }),
  commands: {
    record: {
      args: Schema.Struct({ token: Schema.Number, pad: Schema.String }),
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
      },
    },
  },
})
