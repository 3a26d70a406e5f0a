/**
 * The `core` suite: the engine alone, no wire and no disk, so these figures are the ceiling
 * every other suite sits under.
 *
 * 1. Trivial commands per second (Counter `incr {by: 1}`):
 *    a. a replica applying confirmed entries from the authority (ReplicaState.integrate,
 *       batches of 1000); goal >= 1,000,000/s;
 *    b. local submits (Doc.submit through a CanonClient with no storage and no connection);
 *    c. the authority ordering and committing them (DocAuthority over MemoryStorage,
 *       batches of 1000).
 * 2. Rebase: 100 pending local commands over 1 incoming entry, with a state of 1k and of 100k
 *    items; goal: 100k takes at most twice as long as 1k (rebase must not scale with state).
 * 3. Array commands (indexOf, splice, unshift, find on a list of 1,000 cards) applied by a
 *    replica from confirmed entries (see core-arrays.ts).
 * 4. The hub's client table under a client that says one made-under number on every command:
 *    outcomes recorded and dropped from the window cost what they cost spread over distinct
 *    commands; goal: at most twice (see core-client-table.ts).
 */
import { figure, sample, type Figure, type Suite, type SuiteContext, figureLog } from "./harness.js"
import { authorityCommitsPerSecond, entriesAppliedPerSecond, localSubmitsPerSecond } from "./core-throughput.js"
import { rebaseTimes } from "./core-rebase.js"
import { arrayEntriesPerSecond } from "./core-arrays.js"
import { oneKeyRatio } from "./core-client-table.js"

/**
 * --quick only cuts the number of runs and the warm-up: each run does the same work in both
 * modes (outbox and log sizes change some rates), so quick figures compare with full ones.
 */
const sizes = (quick: boolean) => ({
  plan: quick ? { warmup: 2, warmupMs: 1_000, runs: 7 } : { warmup: 3, warmupMs: 3_000, runs: 15 },
  /** Commands per batch (integrate call, submit burst, authority submit message). */
  batch: 1000,
  /** Batches per run. */
  integrateBatches: 100,
  submitBatches: 10,
  authorityBatches: 20,
  /** Rebases per run, and the state sizes compared. */
  rebases: 200,
  pending: 100,
  small: 1_000,
  large: 100_000,
  /** Array commands: batches per run, cards in the list. */
  arrayBatches: 5,
  listLength: 1_000,
  /** Client table: outcomes recorded per run, and the window they are dropped from. */
  tableRecords: 60_000,
  tableWindow: 20_000,
})

const run = async (ctx: SuiteContext): Promise<Figure[]> => {
  const s = sizes(ctx.quick)
  const { figures, add } = figureLog(ctx)

  add(figure("replica-integrate", "1a. replica: confirmed entries applied", "entries/s",
    await sample(s.plan, () => entriesAppliedPerSecond(s.integrateBatches, s.batch)),
    { goal: { op: ">=", value: 1_000_000 }, note: `Counter incr, ReplicaState.integrate, batches of ${s.batch}` }))

  add(figure("replica-submit", "1b. replica: local submits (offline)", "submits/s",
    await sample(s.plan, () => localSubmitsPerSecond(s.submitBatches, s.batch)),
    { note: `Doc.submit, no storage, no connection; ${s.submitBatches} bursts of ${s.batch} per run from an empty outbox` }))

  add(figure("authority-commit", "1c. authority: commands ordered + committed", "commands/s",
    await sample(s.plan, () => authorityCommitsPerSecond(s.authorityBatches, s.batch)),
    { note: `DocAuthority.submit over MemoryStorage, one live subscriber, batches of ${s.batch}, checkpoint hash every 256 entries (default)` }))

  const rebase = await rebaseTimes({ plan: s.plan, rebases: s.rebases, pending: s.pending, sizes: [s.small, s.large] })
  const [small, large] = rebase.times
  const note = `${s.pending} pending renames, 1 incoming entry, mean of ${s.rebases} rebases per run`
  add(figure("rebase-1k", `2. rebase, state of ${s.small.toLocaleString("en-US")} items`, "µs", small, { note }))
  add(figure("rebase-100k", `2. rebase, state of ${s.large.toLocaleString("en-US")} items`, "µs", large, { note }))
  add(figure("rebase-ratio", "2. rebase ratio 100k / 1k", "x", rebase.ratios,
    { goal: { op: "<=", value: 2 }, note: "per-run ratio of the two sizes measured back to back" }))

  add(figure("replica-array-commands", `3. replica: array commands on ${s.listLength.toLocaleString("en-US")} cards`, "entries/s",
    await sample(s.plan, () => arrayEntriesPerSecond(s.arrayBatches, s.batch, s.listLength)),
    { note: `move = indexOf + splice + unshift on the id list, find + flip on the cards; ReplicaState.integrate, batches of ${s.batch}` }))

  add(figure("client-table-one-key", "4. client table: one made-under number on every command / distinct", "x",
    await sample(s.plan, () => oneKeyRatio(s.tableRecords, s.tableWindow)),
    { goal: { op: "<=", value: 2 }, note: `${s.tableRecords.toLocaleString("en-US")} outcomes recorded, window ${s.tableWindow.toLocaleString("en-US")}; per-run ratio of the two measured back to back` }))
  return figures
}

export const suite: Suite = { name: "core", title: "engine only: replica, local submits, authority, rebase", run }
