/**
 * One run of the simulator CLI (cli.ts: its flags, its output), as a function: `cli.ts` runs
 * one in its process; `serve.ts` runs many, one after another, in one process (a warm engine,
 * tsx paid once). The output is the same either way, line for line: a failing seed's replay
 * line replays it in a process of its own.
 */
import { DEFAULTS, runSimulation, type SimOptions } from "./simulation.js"
import { ATTACKS, type Attack } from "./hostile.js"

/** A bad command line: the message, and the CLI's exit code 2. */
class Usage extends Error {}

/**
 * Runs the seeds `args` asks for (cli.ts lists the flags), printing what the CLI prints:
 * `print` for its output, `printError` for usage errors and `--live` traces. Returns the exit
 * code: 0 all seeds passed, 1 some failed, 2 a bad command line.
 */
export const runWorld = async (args: ReadonlyArray<string>, print: (line: string) => void, printError: (line: string) => void = print): Promise<number> => {
  try {
    return await run(args, print, printError)
  } catch (e) {
    if (!(e instanceof Usage)) throw e
    printError(e.message)
    return 2
  }
}

const run = async (args: ReadonlyArray<string>, print: (line: string) => void, printError: (line: string) => void): Promise<number> => {
  /** Every flag this run reads; any other is refused once the knobs are read (a misspelt knob would run the default world). */
  const known = new Set<string>()
  const has = (name: string) => (known.add(name), args.includes(`--${name}`))
  // A flag given twice takes its last value: a test's world widens a base list ([...CORE, "--hostile", "1"]).
  const flag = (name: string, fallback: number): number => {
    known.add(name)
    const i = args.lastIndexOf(`--${name}`)
    if (i < 0) return fallback
    const v = Number(args[i + 1])
    if (!Number.isFinite(v)) throw new Usage(`--${name} needs a number, not ${JSON.stringify(args[i + 1])}`)
    return v
  }
  const value = (name: string): string | undefined => {
    known.add(name)
    const i = args.lastIndexOf(`--${name}`)
    return i >= 0 ? args[i + 1] : undefined
  }
  const verbose = has("verbose")
  const quiet = has("quiet")
  const replicas = flag("replicas", 5)
  const single = has("seed") ? flag("seed", 1) : undefined
  const from = flag("from", 1)
  const skipArg = args.indexOf("--skip")
  const skip = new Set(skipArg >= 0 ? (args[skipArg + 1] ?? "").split(",").filter(Boolean).map(Number) : [])
  const seeds = single !== undefined ? [single] : Array.from({ length: flag("seeds", 100) }, (_, i) => from + i).filter((s) => !skip.has(s))

  for (const a of value("attacks")?.split(",") ?? []) {
    if (!(ATTACKS as ReadonlyArray<string>).includes(a)) throw new Usage(`Unknown attack ${a}; known: ${ATTACKS.join(", ")}`)
  }
  function protocols(): "mixed" | "v1" | "v2" | "v3" | "v4" {
    const v = value("protocols") ?? "mixed"
    if (v !== "mixed" && v !== "v1" && v !== "v2" && v !== "v3" && v !== "v4") throw new Usage(`--protocols is mixed, v1, v2, v3 or v4, not ${JSON.stringify(v)}`)
    return v
  }
  const knobs = {
    docs: flag("docs", DEFAULTS.docs),
    bigBytes: flag("big-kib", DEFAULTS.bigBytes / 1024) * 1024,
    drifting: flag("drifting", 1) !== 0,
    hostile: flag("hostile", 1) !== 0,
    appBugs: flag("app-bugs", 1) !== 0,
    readLatency: flag("read-latency", 1) !== 0,
    hubWriteFailures: flag("hub-write-failures", DEFAULTS.hubWriteFailures),
    hubReadFailures: flag("hub-read-failures", DEFAULTS.hubReadFailures),
    replicaWriteFailures: flag("replica-write-failures", DEFAULTS.replicaWriteFailures),
    replicaReadFailures: flag("replica-read-failures", DEFAULTS.replicaReadFailures),
    clockSteps: flag("clock-steps", DEFAULTS.clockSteps),
    byteBuffers: flag("byte-buffers", 1) !== 0,
    stalls: flag("stalls", DEFAULTS.stalls),
    replicaQuota: flag("replica-quota", DEFAULTS.replicaQuota),
    gracefulStops: flag("graceful-stops", DEFAULTS.gracefulStops),
    faults: flag("faults", DEFAULTS.faults),
    ops: flag("ops", DEFAULTS.ops),
    activeMs: flag("active-ms", DEFAULTS.activeMs),
    checkpointEvery: flag("checkpoint-every", DEFAULTS.checkpointEvery),
    catchUpPage: flag("catch-up-page", DEFAULTS.catchUpPage),
    protocols: protocols(),
    snapshots: flag("snapshots", 1) !== 0,
    snapshotCrashes: flag("snapshot-crashes", DEFAULTS.snapshotCrashes),
    streamFaults: flag("stream-faults", DEFAULTS.streamFaults),
    longOutages: flag("long-outages", 1) !== 0,
    mixedFleet: flag("mixed-fleet", 1) !== 0,
    crdt: flag("crdt", 1) !== 0,
    crdtAutomerge: flag("crdt-automerge", DEFAULTS.crdtAutomerge),
    crdtNotes: flag("crdt-notes", DEFAULTS.crdtNotes),
    crdtPastes: flag("crdt-pastes", DEFAULTS.crdtPastes),
    crdtHeavy: flag("crdt-heavy", DEFAULTS.crdtHeavy),
    crdtPoison: flag("crdt-poison", DEFAULTS.crdtPoison),
    memoryHog: flag("memory-hog", DEFAULTS.memoryHog),
    cpuHog: flag("cpu-hog", DEFAULTS.cpuHog),
    flagBursts: flag("flag-bursts", DEFAULTS.flagBursts),
    churn: flag("churn", DEFAULTS.churn),
    deafAskers: flag("deaf-askers", DEFAULTS.deafAskers),
    unsentKib: flag("unsent-kib", DEFAULTS.unsentKib),
    presenceChurn: flag("presence-churn", DEFAULTS.presenceChurn),
    rollbacks: flag("rollbacks", DEFAULTS.rollbacks),
    ...(value("attacks") !== undefined ? { attacks: value("attacks")!.split(",") as Attack[] } : {}),
  } satisfies Omit<SimOptions, "seed" | "replicas">
  for (const name of ["first", "live", "stats", "verbose", "quiet", "skip"]) known.add(name)
  for (const a of args) {
    if (a.startsWith("--") && !known.has(a.slice(2))) {
      throw new Usage(`Unknown flag ${a}; npm run sim -- --help lists them.`)
    }
  }

  /** The knobs that differ from the defaults, as flags: part of every replay line. */
  const knobFlags = args.filter((a, i) => {
    const name = a.startsWith("--") ? a.slice(2) : args[i - 1]?.startsWith("--") ? args[i - 1]!.slice(2) : ""
    return !["seeds", "seed", "from", "replicas", "verbose", "quiet", "first", "skip", "live", "stats"].includes(name)
  }).join(" ")
  const replay = (seed: number) => `npm run sim -- --seed ${seed} --replicas ${replicas}${knobFlags ? ` ${knobFlags}` : ""} --verbose`

  let failures = 0
  let ran = 0
  const byInvariant = new Map<string, { seeds: number[]; line: string }>()
  const started = Date.now()
  const totals: Record<string, number> = {}
  for (const seed of seeds) {
    const r = await runSimulation({ seed, replicas, ...knobs, ...(has("live") ? { onTrace: (l: string) => printError(`    ${l}`) } : {}) })
    ran++
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v
    if (r.failures.length > 0) {
      failures++
      print(`FAIL --seed ${seed} (replay: ${replay(seed)})`)
      for (const f of quiet ? r.failures.slice(0, 1) : r.failures) print(`  ${f}`)
      if (verbose) for (const t of r.trace) print(`    ${t}`)
      const seenHere = new Set<string>()
      for (const f of r.failures) {
        const invariant = f.slice(0, Math.max(0, f.indexOf(":"))) || "other"
        if (seenHere.has(invariant)) continue
        seenHere.add(invariant)
        const g = byInvariant.get(invariant) ?? { seeds: [], line: `${f}  (replay: ${replay(seed)})` }
        g.seeds.push(seed)
        byInvariant.set(invariant, g)
      }
      if (has("first")) break
    } else if (verbose || single !== undefined) {
      print(`ok --seed ${seed} digest ${r.digest} ${JSON.stringify(r.stats)}`)
    }
  }
  const secs = (Date.now() - started) / 1000
  if (byInvariant.size > 0) {
    print("failures by invariant (seeds failing, first failure):")
    for (const [k, g] of [...byInvariant].sort((a, b) => b[1].seeds.length - a[1].seeds.length)) {
      print(`  ${k}: ${g.seeds.length} seeds; ${g.line}`)
    }
  }
  if (has("stats")) print(`stats ${JSON.stringify(totals)}`)
  print(`sim: ${ran} seeds, ${replicas} replicas, ${failures} failures (${secs.toFixed(1)} s, ${(ran / secs).toFixed(2)} seeds/s)`)
  return failures > 0 ? 1 : 0
}
