/**
 * npm run sim -- --seeds 500 --replicas 5 [--from 1] [--seed N] [--verbose] [knobs]
 *
 * Runs the simulator for many seeds; a failing seed prints `--seed N` (with every knob that
 * differs from its default) to replay it exactly. At the end, failures are grouped by the
 * invariant they break, with one replay line each.
 *
 * Knobs (defaults turn the whole world on):
 *   --docs N                   TodoPlus documents (2)
 *   --big-kib N                grow one document to N KiB, 0: none (2048)
 *   --drifting 0|1             a deliberately non-deterministic document (1)
 *   --hostile 0|1              hostile raw clients and forgers (1)
 *   --attacks a,b              the raw client's repertoire (all of hostile.ts ATTACKS)
 *   --app-bugs 0|1             honest replicas submit aliasing and non-plain writes (1)
 *   --read-latency 0|1         disk reads take virtual time (1)
 *   --hub-write-failures P     probability a hub disk write fails (0.01)
 *   --hub-read-failures P      probability a hub disk read fails (0.002; its own random stream)
 *   --replica-write-failures P probability a replica disk write fails (0.01)
 *   --replica-read-failures P  probability a replica disk read fails (0.002; its own random stream)
 *   --clock-steps N            steps of the hub's or a replica's wall clock, 1 s to 2 h (2; its own stream)
 *   --byte-buffers 0|1         connections count what they hold unread in bytes, as sockets do (1)
 *   --stalls N                 times a replica stops reading for 0.5-6 s (2; its own stream)
 *   --replica-quota N          times a replica's disk is nearly full for 1-8 s: batches over 16 KiB fail (2; its own stream)
 *   --faults F                 network and crash faults, 0 = none (1)
 *   --ops N --active-ms N      workload ticks and active virtual time (160, 20000)
 *   --checkpoint-every N --catch-up-page N (16, 8)
 *   --protocols mixed|v1..v4   wire protocol of replicas and hub starts (mixed)
 *   --snapshots 0|1            small snapshot policy: snapshots, compaction, streams (1)
 *   --graceful-stops P         share of the hub's random stops that close it gracefully instead of killing it (0.3)
 *   --snapshot-crashes P       probability a hub crash is aimed at a snapshot/compaction write (0.05)
 *   --stream-faults P          probability a streamed chunk is corrupted or its connection cut (0.2)
 *   --long-outages 0|1         some replica crashes last seconds (1)
 *   --mixed-fleet 0|1          a document of a machine with versions 1..3, replicas of every
 *                              version, hub and replica upgrades at random moments; v3's state
 *                              migration throws on some titles, so the hub may hold the document
 *                              at its version (counters held*, heldSeeds: seeds that did) (1)
 *   --crdt 0|1                 a document with a Yjs and an Automerge text field the replicas
 *                              type into concurrently, checked by crdt-check.ts (1)
 *   --crdt-automerge P         share of the typing that goes into the Automerge text (0.3)
 *   --crdt-pastes P            probability a typing burst is 2-4 pastes of 30-100 KiB (0.02)
 *   --crdt-heavy N             a hostile writer tries heavy Automerge changes N times a second (0)
 *   --crdt-poison N            a hostile client sends Yjs values nested past what Yjs reads back, N times a second (0)
 *   --flag-bursts N            bursts of large commands whose compact arguments outweigh their
 *                              canonical form, into the big document (1)
 *   --churn N                  bursts of subscribes to fresh documents by a raw client (1)
 *   --deaf-askers N            raw clients that stop reading and ask for errors past the hub's
 *                              hard limit, N of them; the hub runs with small output limits (0)
 *   --presence-churn N         raw clients that re-subscribe hundreds of times at once holding a
 *                              large presence, then leave; a watcher checks the pacing (0)
 *   --rollbacks N              devices whose disks are restored from their backups N times, one
 *                              moved to a new device from its backup, on a document of their own (2; rollback.ts)
 * Harness flags: --first (stop at the first failing seed), --skip 3,17 (seeds to leave out),
 * --stats (print the counters of every seed summed, as one JSON line "stats {...}"),
 * --quiet (only the first failure line of each failing seed), --live (trace lines as they
 * happen, on stderr: for a seed that does not finish).
 */
import { readFileSync } from "node:fs"
import { DEFAULTS, runSimulation, type SimOptions } from "./simulation.js"
import { ATTACKS, type Attack } from "./hostile.js"

const args = process.argv.slice(2)
if (args.includes("--help") || args.includes("-h")) {
  // The help is this file's header comment: one text to keep true.
  const header = readFileSync(new URL(import.meta.url), "utf8").match(/^\/\*\*\n([\s\S]*?)\n \*\//)![1]!
  console.log(header.replace(/^ \* ?/gm, ""))
  process.exit(0)
}
/** Every flag this run reads; any other is refused once the knobs are read (a misspelt knob would run the default world). */
const known = new Set<string>()
const has = (name: string) => (known.add(name), args.includes(`--${name}`))
// A flag given twice takes its last value: a test's world widens a base list ([...CORE, "--hostile", "1"]).
const flag = (name: string, fallback: number): number => {
  known.add(name)
  const i = args.lastIndexOf(`--${name}`)
  if (i < 0) return fallback
  const v = Number(args[i + 1])
  if (!Number.isFinite(v)) {
    console.error(`--${name} needs a number, not ${JSON.stringify(args[i + 1])}`)
    process.exit(2)
  }
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
  if (!(ATTACKS as ReadonlyArray<string>).includes(a)) {
    console.error(`Unknown attack ${a}; known: ${ATTACKS.join(", ")}`)
    process.exit(2)
  }
}
function protocols(): "mixed" | "v1" | "v2" | "v3" | "v4" {
  const v = value("protocols") ?? "mixed"
  if (v !== "mixed" && v !== "v1" && v !== "v2" && v !== "v3" && v !== "v4") {
    console.error(`--protocols is mixed, v1, v2, v3 or v4, not ${JSON.stringify(v)}`)
    process.exit(2)
  }
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
  crdtPastes: flag("crdt-pastes", DEFAULTS.crdtPastes),
  crdtHeavy: flag("crdt-heavy", DEFAULTS.crdtHeavy),
  crdtPoison: flag("crdt-poison", DEFAULTS.crdtPoison),
  flagBursts: flag("flag-bursts", DEFAULTS.flagBursts),
  churn: flag("churn", DEFAULTS.churn),
  deafAskers: flag("deaf-askers", DEFAULTS.deafAskers),
  presenceChurn: flag("presence-churn", DEFAULTS.presenceChurn),
  rollbacks: flag("rollbacks", DEFAULTS.rollbacks),
  ...(value("attacks") !== undefined ? { attacks: value("attacks")!.split(",") as Attack[] } : {}),
} satisfies Omit<SimOptions, "seed" | "replicas">
for (const name of ["first", "live", "stats", "verbose", "quiet", "skip"]) known.add(name)
for (const a of args) {
  if (a.startsWith("--") && !known.has(a.slice(2))) {
    console.error(`Unknown flag ${a}; npm run sim -- --help lists them.`)
    process.exit(2)
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
  const r = await runSimulation({ seed, replicas, ...knobs, ...(has("live") ? { onTrace: (l: string) => console.error(`    ${l}`) } : {}) })
  ran++
  for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v
  if (r.failures.length > 0) {
    failures++
    console.log(`FAIL --seed ${seed} (replay: ${replay(seed)})`)
    for (const f of quiet ? r.failures.slice(0, 1) : r.failures) console.log(`  ${f}`)
    if (verbose) for (const t of r.trace) console.log(`    ${t}`)
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
    console.log(`ok --seed ${seed} digest ${r.digest} ${JSON.stringify(r.stats)}`)
  }
}
const secs = (Date.now() - started) / 1000
if (byInvariant.size > 0) {
  console.log("failures by invariant (seeds failing, first failure):")
  for (const [k, g] of [...byInvariant].sort((a, b) => b[1].seeds.length - a[1].seeds.length)) {
    console.log(`  ${k}: ${g.seeds.length} seeds; ${g.line}`)
  }
}
if (has("stats")) console.log(`stats ${JSON.stringify(totals)}`)
console.log(`sim: ${ran} seeds, ${replicas} replicas, ${failures} failures (${secs.toFixed(1)} s, ${(ran / secs).toFixed(2)} seeds/s)`)
process.exit(failures > 0 ? 1 : 0)
