/**
 * `npm run bench [-- --quick] [-- --suite NAME]`: runs the benchmark suites, prints a table
 * per suite and writes bench/results/<suite>.json (bench/results/<suite>.quick.json with
 * --quick, so a quick run never overwrites the reference figures).
 *
 * Suites are modules bench/<name>.ts exporting `suite` (see harness.ts); add one by adding
 * its loader to SUITES. Run through `node --expose-gc` so each figure starts from a collected heap.
 */
import { environment, formatTable, hasGc, now, verdict, writeResults, type Suite } from "./harness.js"
import { writeReadme } from "./report.js"

const SUITES: Record<string, () => Promise<{ suite: Suite }>> = {
  core: () => import("./core.js"),
  storage: () => import("./storage.js"),
  wire: () => import("./wire.js"),
  peers: () => import("./peers.js"),
  outbox: () => import("./outbox-sync.js"),
  bundle: () => import("./bundle.js"),
  snapshots: () => import("./snapshots.js"),
  crdt: () => import("./crdt.js"),
  versions: () => import("./versions.js"),
}

const usage = `usage: npm run bench -- [--quick] [--suite NAME]
  --quick       fewer runs, shorter warm-up (the whole run takes about three minutes on two cores)
  --suite NAME  run one suite: ${Object.keys(SUITES).join(", ")} (default: all)`

class UsageError extends Error {}

const parseArgs = (argv: ReadonlyArray<string>): { quick: boolean; suites: string[] } => {
  let quick = false
  const suites: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--quick") quick = true
    else if (a === "--suite" || a.startsWith("--suite=")) {
      const name = a === "--suite" ? argv[++i] : a.slice("--suite=".length)
      if (name === undefined || !(name in SUITES)) throw new UsageError(`Unknown suite "${name ?? ""}".\n${usage}`)
      suites.push(name)
    } else if (a === "--help" || a === "-h") {
      console.log(usage)
      process.exit(0)
    } else throw new UsageError(`Unknown argument "${a}".\n${usage}`)
  }
  return { quick, suites: suites.length > 0 ? suites : Object.keys(SUITES) }
}

const main = async (): Promise<void> => {
  const { quick, suites } = parseArgs(process.argv.slice(2))
  if (!hasGc) console.warn("warning: no global gc(); run through `npm run bench` (node --expose-gc) for steadier figures")
  const env = environment()
  console.log(`${env.machine.cpu}, ${env.machine.cores} cores, ${(env.machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${env.node}${quick ? ", quick" : ""}`)
  let missed = 0
  for (const name of suites) {
    running = name
    const { suite } = await SUITES[name]!()
    console.log(`\n== ${suite.name}: ${suite.title}`)
    const started = now()
    const figures = await suite.run({ quick, log: (line) => console.log(`  ${line}`) })
    const seconds = (now() - started) / 1000
    console.log(`\n${formatTable(figures)}\n(${seconds.toFixed(1)} s)`)
    missed += figures.filter((f) => verdict(f) === "MISS").length
    const path = writeResults(quick ? `${name}.quick` : name, { suite: name, quick, seconds: Number(seconds.toFixed(1)), ...env, figures })
    console.log(`wrote ${path}`)
  }
  if (missed > 0) console.log(`\n${missed} goal(s) missed`)
  console.log(`wrote ${writeReadme()}`)
  running = undefined
}

/** The suite running now. */
let running: string | undefined
// A suite awaiting a promise nothing will settle (a virtual clock nobody runs) lets the event
// loop empty, and Node would exit 0 mid-run: CI took that for every suite having run.
process.on("beforeExit", () => {
  if (running === undefined) return
  console.error(`bench: suite "${running}" stopped before its end (it awaited a promise that never settled)`)
  process.exit(1)
})

main().catch((e: unknown) => {
  console.error(e instanceof UsageError ? e.message : e)
  process.exit(e instanceof UsageError ? 2 : 1)
})
