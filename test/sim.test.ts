/**
 * The seeded fault simulator under jest: a bounded number of seeds on every run (the CLI,
 * `npm run sim`, runs as many as you like), determinism, and proof that the checker bites.
 */
import { runSimulation } from "./sim/simulation.js"
import { Flaky } from "./support/machines.js"

const SEEDS = 40

test(`invariants hold for ${SEEDS} seeds with 4 replicas and faults`, async () => {
  const failed: string[] = []
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = await runSimulation({ seed, replicas: 4 })
    if (r.failures.length > 0) failed.push(`--seed ${seed}: ${r.failures.join("; ")}`)
  }
  expect(failed).toEqual([])
})

test("the faults actually happen", async () => {
  const totals: Record<string, number> = {}
  for (let seed = 1; seed <= 10; seed++) {
    const r = await runSimulation({ seed, replicas: 4 })
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v
  }
  for (const k of ["drops", "partitions", "replicaCrashes", "hubCrashes", "rawInvalid", "localRefusals", "entries"]) {
    expect(totals[k]).toBeGreaterThan(0)
  }
})

test("a seed replays exactly", async () => {
  const a = await runSimulation({ seed: 7, replicas: 3 })
  const b = await runSimulation({ seed: 7, replicas: 3 })
  expect(b.digest).toBe(a.digest)
  expect(b.trace).toEqual(a.trace)
  const c = await runSimulation({ seed: 8, replicas: 3 })
  expect(c.digest).not.toBe(a.digest)
})

test("a non-deterministic machine is caught by checkpoints and healed", async () => {
  let desyncs = 0
  for (let seed = 1; seed <= 5; seed++) {
    const r = await runSimulation({ seed, replicas: 3, machine: Flaky, checkpointEvery: 8, nondeterministic: true })
    expect(r.failures).toEqual([])
    desyncs += r.stats.desyncs!
  }
  expect(desyncs).toBeGreaterThan(0)
})

test("without checkpoints the same machine ends diverged, and the checker says so", async () => {
  const r = await runSimulation({ seed: 1, replicas: 3, machine: Flaky, checkpointEvery: Infinity, quietCheckpointMs: Infinity, nondeterministic: true })
  expect(r.stats.desyncs).toBe(0)
  expect(r.failures.some((f) => f.startsWith("convergence:"))).toBe(true)
})
