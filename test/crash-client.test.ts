/**
 * Kill -9 of a client, with real processes: a client process on LevelDB makes edits offline
 * (and, in later rounds, online) and is SIGKILLed at seeded random moments; restarted on its
 * directory with the hub reachable, its pending commands are confirmed exactly once (each
 * clientSeq once in the hub's log, every persisted command present) and it converges. The
 * scenario and its checks: test/crash/client-crash.ts.
 *
 * Kills here: 4. More: `npm run chaos -- --scenario client --client-kills 20`. The seed is
 * random per run and in the test's name; rerun one with CANON_CRASH_SEED=<seed>.
 */
import { killAllChildren, removeTempDirs, seedFromEnv } from "./crash/harness.js"
import { clientCrashRepro, describeClientCrash, runClientCrash } from "./crash/client-crash.js"

const KILLS = 4
const seed = seedFromEnv()

afterAll(async () => {
  await killAllChildren()
  removeTempDirs()
})

test(`client SIGKILLed ${KILLS} times with pending commands (seed ${seed}): confirmed exactly once after restart, converges`, async () => {
  const repro = clientCrashRepro({ seed, kills: KILLS })
  let report
  try {
    report = await runClientCrash({ seed, kills: KILLS })
  } catch (e) {
    throw new Error(`The client crash scenario failed with seed ${seed}: ${e instanceof Error ? e.message : String(e)}\nreproduce: ${repro}`)
  }
  console.log(describeClientCrash(report))
  if (report.violations.length > 0) {
    throw new Error(`${report.violations.length} invariant violation(s) with seed ${seed}:\n  ${report.violations.slice(0, 30).join("\n  ")}\nreproduce: ${repro}`)
  }
  expect(report.kills).toBe(KILLS)
  expect(report.persistedChecked).toBeGreaterThan(0)
  expect(report.clientEntries).toBeGreaterThanOrEqual(report.persistedChecked)
}, 150_000)
