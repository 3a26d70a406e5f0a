/**
 * The mutation harness (npm run sim:mutants) still works: a few mutants, on a few seeds of a
 * smaller world, are caught; a stale anchor fails loudly with the mutant's name. The full
 * table (every mutant, 100 seeds) is `npm run sim:mutants`.
 */
import { MUTANT_WORLD, MUTANTS } from "./sim/mutant-table.js"
import { AnchorMissing, checkAnchors, prepareCopy, runMutant } from "./sim/mutant-runner.js"

const SMALL = [...MUTANT_WORLD, "--replicas", "3", "--big-kib", "256"]

/** The simulator child's bound; the test's jest timeout is above it (see sim.test.ts). */
const CHILD_MS = 120_000

/**
 * A rebase and a compaction bug, and the two CRDT-field migrations that only the versioned
 * text document exercises (the hub's from its log, a stored replica's on an app upgrade): in
 * this world the first is caught at seed 1 and the second at seed 2 (2026-12-06).
 */
test.each(["skip-rebase-undo", "compact-one-too-many", "apply-migration-drops-fields", "replica-upgrade-drops-fields"])("mutant %s is caught within 3 seeds", async (name) => {
  const mutant = MUTANTS.find((m) => m.name === name)!
  const r = await runMutant(mutant, SMALL, 3, [], CHILD_MS)
  expect([r.status, r.line]).toEqual(["caught", expect.stringMatching(/^--seed \d+: \w[\w ]*: /)])
}, CHILD_MS + 30_000)

test("every mutant's anchors are in today's engine (or the mutant waits for engine support)", () => {
  for (const m of MUTANTS) {
    try {
      checkAnchors(m)
    } catch (e) {
      expect(e).toBeInstanceOf(AnchorMissing)
      expect([m.name, m.needsEngineSupport]).toEqual([m.name, true])
    }
  }
})

test("a stale anchor fails loudly, naming the mutant", () => {
  const stale = { name: "stale-anchor", breaks: "nothing", patches: [{ file: "core/machine.ts", anchor: "this text is not in the engine", replacement: "" }] }
  expect(() => prepareCopy(stale)).toThrow(/mutant stale-anchor: anchor "this text is not in the engine" occurs 0 times in core\/machine.ts/)
})
