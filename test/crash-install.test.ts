/**
 * Kill -9 of a client while it installs a snapshot, with real processes: a client process on
 * LevelDB opens a ~4 MiB document the hub streams to it as a snapshot, submitting commands
 * meanwhile, and is SIGKILLed part way through the stream, as the installed state's batch
 * goes to LevelDB, or just after; restarted on its directory, it opens the document, keeps
 * every persisted command, and at the end converges with the authority loaded from disk.
 * The scenario: test/crash/install-crash.ts.
 *
 * Kills here: one per aim (3). More: `npm run chaos -- --scenario install --install-kills 20`.
 * The seed is random per run and in the test's name; rerun one with CANON_CRASH_SEED=<seed>.
 */
import { killAllChildren, removeTempDirs, seedFromEnv } from "./crash/harness.js"
import { KILL_AIMS, describeInstallCrash, installCrashRepro, runInstallCrash } from "./crash/install-crash.js"

const KILLS = KILL_AIMS.length
const seed = seedFromEnv()

afterAll(async () => {
  await killAllChildren()
  removeTempDirs()
})

test(`client SIGKILLed ${KILLS} times while installing a streamed snapshot (seed ${seed}): opens, loses nothing from its outbox, converges`, async () => {
  const repro = installCrashRepro({ seed, kills: KILLS })
  let report
  try {
    report = await runInstallCrash({ seed, kills: KILLS })
  } catch (e) {
    throw new Error(`The install crash scenario failed with seed ${seed}: ${e instanceof Error ? e.message : String(e)}\nreproduce: ${repro}`)
  }
  console.log(describeInstallCrash(report))
  if (report.violations.length > 0) {
    throw new Error(`${report.violations.length} invariant violation(s) with seed ${seed}:\n  ${report.violations.slice(0, 30).join("\n  ")}\nreproduce: ${repro}`)
  }
  expect(report.kills.length).toBe(KILLS)
  expect(report.streams).toBeGreaterThan(0)
  expect(report.persisted).toBeGreaterThan(0)
}, 170_000)
