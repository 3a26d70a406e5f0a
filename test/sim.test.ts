/**
 * The seeded fault simulator under jest: a bounded number of seeds per part of the world on
 * every run (the CLI, `npm run sim`, runs as many as you like, every part at once and with
 * a document of megabytes), that the faults and attacks really happen, determinism, and
 * proof that the checker bites.
 *
 * Each part of the world has its own test, so a red run says which invariant the engine
 * lets through: the core world, a large document, failed replica writes, app code that
 * aliases or writes non-plain values, hostile clients (protocol abuse; oversized arguments).
 *
 * Sizes are smaller than the CLI's: inside jest's vm context the engine's state hash runs
 * about 200 times slower than under tsx, and hashing is what a large state costs.
 */
import { runSimulation, type SimOptions } from "./sim/simulation.js"
import { PROTOCOL_ATTACKS, SIZE_ATTACKS, STATE_ATTACKS } from "./sim/hostile.js"
import { Flaky } from "./support/machines.js"

type World = Omit<SimOptions, "seed">

/** Everything but the parts each test turns on. */
const CORE: World = { replicas: 4, hostile: false, appBugs: false, replicaWriteFailures: 0, bigBytes: 0 }
/** Neither app bugs nor attacks that break today's engine outright (jest fails a test on an unhandled rejection). */
const CALM: Partial<World> = { appBugs: false, attacks: PROTOCOL_ATTACKS }

/** Runs seeds 1..n; returns one line per failing seed (its first failures). */
const failingSeeds = async (n: number, world: World): Promise<string[]> => {
  const failed: string[] = []
  for (let seed = 1; seed <= n; seed++) {
    const r = await runSimulation({ seed, ...world })
    if (r.failures.length > 0) failed.push(`--seed ${seed}: ${r.failures.slice(0, 3).join(" | ")}${r.failures.length > 3 ? ` (+${r.failures.length - 3} more)` : ""}`)
  }
  return failed
}

test("core world, 16 seeds: 3 documents (one drifting), crashes, partitions, disk latency, failed hub writes", async () => {
  expect(await failingSeeds(16, CORE)).toEqual([])
})

test("a large document: 32-64 KiB commands, paged catch-up, restarts from snapshots (1 seed)", async () => {
  const r = await runSimulation({ seed: 1, ...CORE, bigBytes: 192 << 10 })
  expect(r.failures).toEqual([])
  expect(r.stats.bigBytes).toBeGreaterThanOrEqual(192 << 10)
})

test("failed replica writes are reported to the app and lose no command (6 seeds)", async () => {
  expect(await failingSeeds(6, { ...CORE, replicaWriteFailures: 0.03 })).toEqual([])
})

test("app code that aliases or writes non-plain values is a rejection, never a broken document (6 seeds)", async () => {
  expect(await failingSeeds(6, { ...CORE, appBugs: true })).toEqual([])
})

test("hostile clients: bad commands, clientSeq gaps and duplicates, forged clientIds are refused (6 seeds)", async () => {
  expect(await failingSeeds(6, { ...CORE, hostile: true, attacks: PROTOCOL_ATTACKS })).toEqual([])
})

test("hostile clients: prototype keys, aliasing and non-plain values are refused or harmless (6 seeds)", async () => {
  expect(await failingSeeds(6, { ...CORE, hostile: true, attacks: STATE_ATTACKS })).toEqual([])
})

test("oversized and deeply nested arguments are refused (1 seed, bounded)", async () => {
  // One replica and no checkpoints: an engine that accepts megabyte arguments still finishes
  // (it is the hashing of such a state that is slow here); 25 s of real time at most.
  const world: World = {
    replicas: 1, docs: 1, bigBytes: 0, drifting: false, hostile: true, attacks: SIZE_ATTACKS, appBugs: false, replicaWriteFailures: 0,
    checkpointEvery: Infinity, quietCheckpointMs: Infinity, ops: 80, maxRealMs: 25_000,
  }
  expect(await failingSeeds(1, world)).toEqual([])
})

test("the faults and attacks actually happen", async () => {
  const totals: Record<string, number> = {}
  for (let seed = 1; seed <= 3; seed++) {
    const r = await runSimulation({ seed, replicas: 4, bigBytes: 64 << 10, ...CALM })
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v
  }
  for (const k of ["drops", "partitions", "replicaCrashes", "hubCrashes", "hostile", "forged", "hubWriteFailures", "replicaWriteFailures", "desyncs", "localRefusals", "entries:todo-0", "entries:big"]) {
    expect([k, totals[k]]).toEqual([k, expect.any(Number)])
    expect(totals[k]).toBeGreaterThan(0)
  }
})

test("a seed replays exactly", async () => {
  const world: World = { ...CALM, replicas: 3, bigBytes: 64 << 10 }
  const a = await runSimulation({ seed: 7, ...world })
  const b = await runSimulation({ seed: 7, ...world })
  expect(b.digest).toBe(a.digest)
  expect(b.trace).toEqual(a.trace)
  expect(b.failures).toEqual(a.failures)
  const c = await runSimulation({ seed: 8, ...world })
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
