/**
 * Kill -9 of the hub, with real processes: a hub process on LevelDB is SIGKILLed at seeded
 * random moments while in-process clients submit over WebSocket, and restarted on the same
 * directory and port each time. Afterwards every acknowledged command is in the log exactly
 * once, the log is contiguous, and every client has the state hash of the authority loaded
 * from disk. The scenario and its checks: test/crash/hub-crash.ts.
 *
 * Kills here: 6 (about 20 s). More: `npm run chaos -- --kills 25`. The seed is random per
 * run and in the test's name; rerun one with CANON_CRASH_SEED=<seed>.
 */
import { killAllChildren, removeTempDirs, seedFromEnv } from "./crash/harness.js"
import { describeHubCrash, hubCrashRepro, runHubCrash } from "./crash/hub-crash.js"

const KILLS = 6
const seed = seedFromEnv()

afterAll(async () => {
  await killAllChildren()
  removeTempDirs()
})

test(`hub SIGKILLed ${KILLS} times under load (seed ${seed}): acknowledged commands kept exactly once, clients converge`, async () => {
  const repro = hubCrashRepro({ seed, kills: KILLS })
  let report
  try {
    report = await runHubCrash({ seed, kills: KILLS })
  } catch (e) {
    throw new Error(`The hub crash scenario failed with seed ${seed}: ${e instanceof Error ? e.message : String(e)}\nreproduce: ${repro}`)
  }
  console.log(describeHubCrash(report))
  if (report.violations.length > 0) {
    throw new Error(`${report.violations.length} invariant violation(s) with seed ${seed}:\n  ${report.violations.slice(0, 30).join("\n  ")}\nreproduce: ${repro}`)
  }
  expect(report.kills).toBe(KILLS)
  expect(report.acknowledged).toBeGreaterThan(0)
  expect(report.logLength).toBe(report.acknowledged)
}, 170_000)
