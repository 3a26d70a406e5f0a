/**
 * Kill -9 of the hub while it snapshots and compacts, with real processes: a hub process on
 * LevelDB with a small snapshot policy is SIGKILLed once in each way of test/crash/
 * snapshot-crash.ts: inside a snapshot write (after a chunk, before the meta), between the
 * compaction horizon write and the deletes, inside an old snapshot's deletion, on the first
 * chunk line without holding, and at random; restarted on the same directory each time.
 * After every kill the directory is checked read-only: the document loads, and every
 * acknowledged command is in its state exactly once (in the log, or in the snapshot the log
 * was compacted behind). At the end the clients converge on the authority's state.
 *
 * Kills here: one round (5, about 30-60 s on a busy 2-core machine). More:
 * `npm run chaos -- --scenario snapshot --kills 30`. The seed is random per run and in the
 * test's name; rerun one with CANON_CRASH_SEED=<seed>.
 */
import { killAllChildren, removeTempDirs, seedFromEnv } from "./crash/harness.js"
import { KILL_MODES, describeSnapshotCrash, runSnapshotCrash, snapshotCrashRepro } from "./crash/snapshot-crash.js"

const KILLS = KILL_MODES.length
const seed = seedFromEnv()

afterAll(async () => {
  await killAllChildren()
  removeTempDirs()
})

test(`hub SIGKILLed ${KILLS} times inside snapshot writes and compactions (seed ${seed}): every acknowledged command kept exactly once, the document loads`, async () => {
  const repro = snapshotCrashRepro({ seed, kills: KILLS })
  let report
  try {
    report = await runSnapshotCrash({ seed, kills: KILLS })
  } catch (e) {
    throw new Error(`The snapshot crash scenario failed with seed ${seed}: ${e instanceof Error ? e.message : String(e)}\nreproduce: ${repro}`)
  }
  console.log(describeSnapshotCrash(report))
  if (report.violations.length > 0) {
    throw new Error(`${report.violations.length} invariant violation(s) with seed ${seed}:\n  ${report.violations.slice(0, 30).join("\n  ")}\nreproduce: ${repro}`)
  }
  expect(report.kills.map((k) => k.mode).sort()).toEqual([...KILL_MODES].sort())
  // The aimed kills reached their windows, and the directory shows they cut those writes.
  const held = report.kills.filter((k) => k.mode === "chunk" || k.mode === "horizon" || k.mode === "drop")
  expect(held.filter((k) => !k.reached)).toEqual([])
  expect(report.kills.find((k) => k.mode === "chunk")!.landed).toBe("in-chunk-write")
  expect(report.kills.find((k) => k.mode === "horizon")!.landed).toBe("before-deletes")
  expect(report.kills.find((k) => k.mode === "drop")!.landed).toBe("in-drop")
  expect(report.snapshots).toBeGreaterThan(0)
  expect(report.horizon).toBeGreaterThan(0)
  expect(report.acknowledged).toBe(report.submitted)
  expect(report.checks).toBeGreaterThan(report.acknowledged)
}, 170_000)
