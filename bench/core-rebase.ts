/**
 * Core figure 2: the time a replica takes to rebase its pending local commands over one
 * incoming entry, for a small and a large state. Rebase should cost O(pending + incoming),
 * not O(state) (see core/journal.ts); the ratio large/small says whether it does.
 *
 * Each size gets one ReplicaState, built directly from a pre-filled Board state, holding
 * `pending` renames of random items; a run times `rebases` integrate calls of one rename
 * from another client each (pending stays the same, so every rebase does the same work).
 * Nothing in the timed region hashes or encodes the state: no checkpoint is ever announced
 * to these replicas and integrate is asked for no snapshot (both are checked).
 * The two sizes run back to back in each run, so the per-run ratio sees the same machine load.
 */
import { Result } from "effect"
import { type Entry } from "../core/index.js"
import { ReplicaState, seededRandom } from "../core/internal.js"
import { check, now, sample, type Plan } from "./harness.js"
import { Board, boardWith, itemId, type BoardState } from "./machines.js"

const DOC = "bench-doc"
const T0 = 1_700_000_000_000

export interface RebasePlan {
  readonly plan: Plan
  readonly rebases: number
  readonly pending: number
  readonly sizes: readonly [small: number, large: number]
}

/** A replica of a board with `items` items and `pending` local renames on top. */
const replicaWithPending = (items: number, pending: number, random: () => number): ReplicaState<BoardState> => {
  const rs = new ReplicaState(DOC, Board, "this-client", () => T0, boardWith(items), 0)
  // Built as Doc.submit builds a pending command (compiled command, decoded and wire args).
  const rename = Board.compiled.get("rename")!
  for (let clientSeq = 1; clientSeq <= pending; clientSeq++) {
    const encoded = { id: itemId(Math.floor(random() * items)), title: `local ${clientSeq}` }
    const args = Result.getOrThrow(rename.decode(encoded))
    rs.push({ clientSeq, name: "rename", args, encoded, cmd: rename, journal: undefined, localRejection: undefined, persisted: true })
  }
  check(rs.pending.every((p) => p.journal !== undefined && p.localRejection === undefined), "every pending command applies")
  return rs
}

/** One run: mean µs per rebase over `count` single-entry integrates. */
const timeRebases = (rs: ReplicaState<BoardState>, items: number, count: number, random: () => number): number => {
  const pending = rs.pending.length
  const incoming: Entry[][] = []
  for (let i = 1; i <= count; i++) {
    const seq = rs.confirmedSeq + i
    incoming.push([{ seq, time: T0 + seq, clientId: "other-client", clientSeq: seq, name: "rename", args: { id: itemId(Math.floor(random() * items)), title: `remote ${seq}` } }])
  }
  let clean = true
  const t0 = now()
  for (const entries of incoming) {
    const r = rs.integrate(entries, undefined, false)
    clean &&= r.applied.length === 1 && r.confirmed.length === 0 && r.desync === undefined && r.snapshot === undefined && !r.gap
  }
  const us = ((now() - t0) * 1000) / count
  check(clean && rs.pending.length === pending && rs.pending.every((p) => p.journal !== undefined), "each rebase applied one entry and kept every pending command, without hashing")
  return us
}

/** Per-run rebase times (µs) for both sizes, and their per-run ratio large/small. */
export const rebaseTimes = async (p: RebasePlan): Promise<{ times: [number[], number[]]; ratios: number[] }> => {
  const random = seededRandom(42)
  const replicas = p.sizes.map((items) => replicaWithPending(items, p.pending, random))
  const times: [number[], number[]] = [[], []]
  let run = 0
  const ratios = await sample(p.plan, () => {
    // Alternate which size goes first, so neither always runs on a warmer or colder heap.
    const order = run++ % 2 === 0 ? [0, 1] : [1, 0]
    const t = [0, 0]
    for (const i of order) t[i] = timeRebases(replicas[i]!, p.sizes[i]!, p.rebases, random)
    times[0].push(t[0]!)
    times[1].push(t[1]!)
    return t[1]! / t[0]!
  })
  // `sample` dropped the warm-up runs' ratios; drop their times too.
  return { times: [times[0].slice(-p.plan.runs), times[1].slice(-p.plan.runs)], ratios }
}
