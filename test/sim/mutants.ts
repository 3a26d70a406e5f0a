/**
 * npm run sim:mutants [-- --seeds 100] [--replicas 4] [--jobs 2] [--only a,b] [--no-baseline] [--max-minutes 60]
 *
 * Mutation testing of the engine: each mutant of mutant-table.ts is applied to a temporary
 * copy of the repository and the simulator runs seeds 1..100 in it until one fails. Prints a
 * table (mutant, seeds run until caught, first failure line); exits non-zero if a mutant
 * survives or its anchor is gone (mutants that need engine support not merged yet are listed
 * as such).
 *
 * First the unmutated engine runs the same seeds in the same world (the baseline): seeds it
 * fails already say nothing about a mutant, so they are skipped and reported.
 *
 * Bounded: at most `--seeds` per mutant, and `--max-minutes` for the whole run (a child still
 * running then is stopped, and its mutant reported as not caught in time).
 */
import { MUTANT_WORLD, MUTANTS, type Mutant } from "./mutant-table.js"
import { AnchorMissing, checkAnchors, prepareCopy, runMutant, runSim, type MutantResult } from "./mutant-runner.js"

const args = process.argv.slice(2)
const value = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const seeds = Number(value("seeds") ?? 100)
const jobs = Number(value("jobs") ?? 2)
const replicas = value("replicas") ?? "4"
const only = value("only")?.split(",")
const mutants = MUTANTS.filter((m) => only === undefined || only.includes(m.name))
if (only !== undefined && mutants.length !== only.length) {
  console.error(`Unknown mutant in --only; known: ${MUTANTS.map((m) => m.name).join(", ")}`)
  process.exit(2)
}
const started = Date.now()
const deadline = started + Number(value("max-minutes") ?? 60) * 60_000
const left = () => Math.max(1_000, deadline - Date.now())
const worldOf = (m: Mutant) => [...MUTANT_WORLD, ...(m.simArgs ?? []), "--replicas", replicas]

// Anchors first: a stale table fails in a second, not after an hour of baselines.
const applicable: Mutant[] = []
const results = new Map<string, MutantResult>()
for (const m of mutants) {
  try {
    checkAnchors(m)
    applicable.push(m)
  } catch (e) {
    if (!(e instanceof AnchorMissing)) throw e
    results.set(m.name, { mutant: m, status: m.needsEngineSupport ? "needs engine support" : "anchor missing", seedsRun: 0, line: e.message })
  }
}

// The baseline of each world the applicable mutants run in.
const skips = new Map<string, number[]>()
if (!args.includes("--no-baseline")) {
  for (const world of new Set(applicable.map((m) => worldOf(m).join(" ")))) {
    const copy = prepareCopy(undefined)
    try {
      const run = await runSim(copy.dir, [...world.split(" "), "--seeds", String(seeds)], { timeoutMs: left() })
      skips.set(world, [...run.failingSeeds])
      console.log(`baseline [${world}]: ${run.failingSeeds.length} of ${run.seedsRun} seeds fail on the unmutated engine${run.failingSeeds.length > 0 ? ` (skipped: ${run.failingSeeds.join(",")}; first: ${run.caught?.line})` : ""}`)
    } finally {
      copy.dispose()
    }
  }
}

// The mutants, `jobs` at a time.
const queue = [...applicable]
await Promise.all(Array.from({ length: Math.max(1, jobs) }, async () => {
  for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
    const world = worldOf(m)
    const r = await runMutant(m, world, seeds, skips.get(world.join(" ")) ?? [], left())
    results.set(m.name, r)
    console.log(`  ${m.name}: ${r.status}${r.status === "caught" ? ` after ${r.seedsRun} seeds` : ""}`)
  }
}))

const rows = mutants.map((m) => results.get(m.name)!)
const w = Math.max(...rows.map((r) => r.mutant.name.length), 6)
console.log(`\n${"mutant".padEnd(w)}  ${"seeds until caught".padEnd(20)}  first failure`)
for (const r of rows) {
  const seedsCol = r.status === "caught" ? String(r.seedsRun) : r.status === "survived" ? `SURVIVED ${r.seedsRun}` : r.status.toUpperCase()
  console.log(`${r.mutant.name.padEnd(w)}  ${seedsCol.padEnd(20)}  ${r.line}`)
}
const bad = rows.filter((r) => r.status === "survived" || r.status === "anchor missing")
console.log(`\nmutants: ${rows.filter((r) => r.status === "caught").length} caught, ${rows.filter((r) => r.status === "survived").length} survived, ${rows.filter((r) => r.status === "anchor missing").length} anchors missing, ${rows.filter((r) => r.status === "needs engine support").length} need engine support (${((Date.now() - started) / 1000).toFixed(0)} s)`)
process.exit(bad.length > 0 ? 1 : 0)
