/**
 * Kill -9 of the hub while stock clients edit whole CRDT documents, with real processes: the
 * hub (the app's startHub, /yjs and /automerge, users by token) on LevelDB is SIGKILLed at
 * seeded moments while y-websocket providers and automerge-repo Repos type markers into
 * several documents, and restarted on the same directory and port. After every kill each
 * document loads from the directory and holds every marker another client had received,
 * once; at the end every client's text equals the document loaded from disk and holds every
 * marker typed. The scenario: test/crash/crdt-docs-crash.ts.
 *
 * Kills here: 3. More: `npm run chaos -- --scenario crdt --crdt-kills 20`. The seed is random
 * per run and in the test's name; rerun one with CANON_CRASH_SEED=<seed>.
 */
import { killAllChildren, removeTempDirs, seedFromEnv } from "./crash/harness.js"
import { crdtDocsCrashRepro, describeCrdtDocsCrash, runCrdtDocsCrash } from "./crash/crdt-docs-crash.js"

const KILLS = 3
const seed = seedFromEnv()

afterAll(async () => {
  await killAllChildren()
  removeTempDirs()
})

test(`hub SIGKILLed ${KILLS} times under y-websocket and automerge-repo clients (seed ${seed}): what a client received is on disk, once; everyone converges`, async () => {
  const repro = crdtDocsCrashRepro({ seed, kills: KILLS })
  let report
  try {
    report = await runCrdtDocsCrash({ seed, kills: KILLS })
  } catch (e) {
    throw new Error(`The crdt documents crash scenario failed with seed ${seed}: ${e instanceof Error ? e.message : String(e)}\nreproduce: ${repro}`)
  }
  console.log(describeCrdtDocsCrash(report))
  if (report.violations.length > 0) {
    throw new Error(`${report.violations.length} invariant violation(s) with seed ${seed}:\n  ${report.violations.slice(0, 30).join("\n  ")}\nreproduce: ${repro}`)
  }
  expect(report.acknowledged).toBeGreaterThan(0)
  expect(report.checks).toBeGreaterThan(0)
}, 170_000)
