/**
 * Kill -9 of the hub in a wider world than crash-hub's, with real processes: several
 * documents with a Yjs and an Automerge text field and a big one, presence, fresh readers
 * joining by snapshot stream just before a kill, and the hub restarted at a newer version
 * of a versioned machine part way (clients at the older and the newer version). Afterwards
 * every acknowledged command is in its document exactly once, every log is contiguous, every
 * text holds every marker typed into it once, every reader converges on the authority loaded
 * from disk and shows every writer's last presence. The scenario: test/crash/wide-crash.ts.
 *
 * Kills here: 3 (about 20-40 s on a busy 2-core machine). More:
 * `npm run chaos -- --scenario wide --wide-kills 20`. The seed is random per run and in the
 * test's name; rerun one with CANON_CRASH_SEED=<seed>.
 */
import { killAllChildren, removeTempDirs, seedFromEnv } from "./crash/harness.js"
import { describeWideCrash, runWideCrash, wideCrashRepro } from "./crash/wide-crash.js"

const KILLS = 3
const seed = seedFromEnv()

afterAll(async () => {
  await killAllChildren()
  removeTempDirs()
})

test(`hub SIGKILLed ${KILLS} times with CRDT fields, several documents, presence and a version upgrade (seed ${seed}): nothing lost or doubled, everyone converges`, async () => {
  const repro = wideCrashRepro({ seed, kills: KILLS })
  let report
  try {
    report = await runWideCrash({ seed, kills: KILLS })
  } catch (e) {
    throw new Error(`The wide crash scenario failed with seed ${seed}: ${e instanceof Error ? e.message : String(e)}\nreproduce: ${repro}`)
  }
  console.log(describeWideCrash(report))
  if (report.violations.length > 0) {
    throw new Error(`${report.violations.length} invariant violation(s) with seed ${seed}:\n  ${report.violations.slice(0, 30).join("\n  ")}\nreproduce: ${repro}`)
  }
  expect(report.kills).toBe(KILLS)
  expect(report.acknowledged).toBeGreaterThan(0)
  expect(report.markers).toBeGreaterThan(0)
}, 170_000)
