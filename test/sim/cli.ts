/**
 * npm run sim -- --seeds 500 --replicas 5 [--from 1] [--seed N] [--verbose]
 * Runs the simulator for many seeds; a failing seed prints `--seed N` to replay it exactly.
 */
import { runSimulation } from "./simulation.js"

const args = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const verbose = args.includes("--verbose")
const replicas = flag("replicas", 5)
const single = args.includes("--seed") ? flag("seed", 1) : undefined
const from = flag("from", 1)
const seeds = single !== undefined ? [single] : Array.from({ length: flag("seeds", 100) }, (_, i) => from + i)

let failures = 0
const started = Date.now()
for (const seed of seeds) {
  const r = await runSimulation({ seed, replicas })
  if (r.failures.length > 0) {
    failures++
    console.log(`FAIL --seed ${seed} (replay: npm run sim -- --seed ${seed} --replicas ${replicas} --verbose)`)
    for (const f of r.failures) console.log(`  ${f}`)
    if (verbose) for (const t of r.trace) console.log(`    ${t}`)
  } else if (verbose || single !== undefined) {
    console.log(`ok --seed ${seed} digest ${r.digest} ${JSON.stringify(r.stats)}`)
  }
}
console.log(`sim: ${seeds.length} seeds, ${replicas} replicas, ${failures} failures (${((Date.now() - started) / 1000).toFixed(1)} s)`)
process.exit(failures > 0 ? 1 : 0)
