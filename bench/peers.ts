/**
 * The `peers` suite: Canon side by side with Yjs and Automerge on the same workloads, in the
 * same run, with Canon / Yjs and Canon / Automerge ratios (per run, measured back to back).
 *
 * 1. Board ops (peers-board.ts): 5 replicas, seeded add / rename / move / delete on cards.
 * 2. Text trace (peers-text.ts): the automerge-paper editing trace, single writer.
 * 3. Contended counter (peers-counter.ts): 20 replicas, delayed links.
 * 4. Cold start (peers-coldstart.ts): a 100k-op history from LevelDB / a Yjs update in
 *    LevelDB / an Automerge file.
 *
 * --quick runs smaller versions (250 board ops, the trace's first 5,000 edits, 200
 * increments, a 5k history, fewer runs, no text memory figures: each costs a child
 * process); their figure labels say so. Figure ids follow peers-common.ts `figId`, which
 * bench/report.ts turns into one comparison table per workload in bench/README.md.
 */
import os from "node:os"
import { now, type Figure, type Suite, type SuiteContext, figureLog } from "./harness.js"
import { boardWorkload, type BoardSizes } from "./peers-board.js"
import { textWorkload, type TextSizes } from "./peers-text.js"
import { counterWorkload, type CounterSizes } from "./peers-counter.js"
import { coldStartWorkload, type ColdStartSizes } from "./peers-coldstart.js"

const sizes = (quick: boolean): { board: BoardSizes; text: TextSizes; counter: CounterSizes; coldstart: ColdStartSizes } => ({
  board: quick
    ? { replicas: 5, rounds: 10, opsPerRound: 5, plan: { warmup: 1, warmupMs: 0, runs: 3 }, memory: true, memoryRuns: 1 }
    : { replicas: 5, rounds: 100, opsPerRound: 10, plan: { warmup: 1, warmupMs: 0, runs: 5 }, memory: true, memoryRuns: 3 },
  text: quick
    ? { edits: 5_000, warmupEdits: 2_000, runs: 3, loadPlan: { warmup: 1, warmupMs: 0, runs: 5 }, wireEdits: 2_000, memory: false, memoryRuns: 1 }
    : { edits: undefined, warmupEdits: 20_000, runs: 3, loadPlan: { warmup: 2, warmupMs: 0, runs: 7 }, wireEdits: 50_000, memory: true, memoryRuns: 3 },
  counter: quick
    ? { replicas: 20, perReplica: 10, windowMs: 1_000, plan: { warmup: 1, warmupMs: 0, runs: 3 } }
    : { replicas: 20, perReplica: 50, windowMs: 2_000, plan: { warmup: 1, warmupMs: 0, runs: 7 } },
  coldstart: quick
    ? { entries: 5_000, plan: { warmup: 1, warmupMs: 0, runs: 3 } }
    : { entries: 100_000, plan: { warmup: 1, warmupMs: 0, runs: 5 } },
})

const run = async (ctx: SuiteContext): Promise<Figure[]> => {
  const s = sizes(ctx.quick)
  const { figures, add } = figureLog(ctx)
  const timed = async (name: string, work: () => Promise<void>) => {
    const t0 = now()
    await work()
    ctx.log(`(${name}: ${((now() - t0) / 1000).toFixed(1)} s; load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")})`)
  }
  await timed("board", () => boardWorkload(ctx, s.board, add))
  await timed("text", () => textWorkload(ctx, s.text, add))
  await timed("counter", () => counterWorkload(ctx, s.counter, add))
  await timed("cold start", () => coldStartWorkload(ctx, s.coldstart, add))
  return figures
}

export const suite: Suite = { name: "peers", title: "Canon vs Yjs and Automerge: board ops, text trace, contended counter, cold start", run }
