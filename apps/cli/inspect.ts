/**
 * `canon inspect DIR [docId]`: what a hub's data directory holds. Without a docId, one line
 * per document (machine, seq, entries kept, bytes of records, newest snapshot, compaction
 * horizon, last checkpoint). With one: its log and horizon, its bytes by kind (log,
 * snapshots, client records, checkpoints), each stored snapshot and whether it verifies
 * (its chunks, streamed, hash to its meta's hash), leftovers of interrupted writes, then a
 * replay (from the initial state, or from a snapshot on a compacted log: replay.ts) that
 * checks every stored checkpoint it can and names the first problem.
 *
 * It never writes: it opens only a directory that holds a Canon store (a LevelDB store with
 * Canon's format record), never creates one, and cannot open the data of a running hub
 * (LevelDB's lock), which it says (read-only-store.ts).
 */
import { CanonError, type Machine } from "../../core/index.js"
import { AuthorityStore } from "../../core/internal.js"
import { formatKey } from "../../core/store/keys.js"
import { ConfigError } from "../hub/config.js"
import { loadMachines } from "./load-machines.js"
import { NotInspectable, ReadOnlyStore } from "./read-only-store.js"
import { describeBytes, fmt, kib, logShape, plural, recordBytes, surveyDoc, type DocSurvey, type SnapshotCheck } from "./doc-records.js"
import { replayDoc } from "./replay.js"
import { shownOutput } from "./terminal-text.js"

export interface InspectOutput {
  log(line: string): void
  progress(done: number, total: number): void
}

export const INSPECT_USAGE = `Usage: canon inspect DIR [docId] [--machines MODULE]   (from a checkout: npm run canon -- inspect ...)
Lists the documents in a hub's data directory DIR; with a docId, shows its log, compaction
horizon, bytes on disk and snapshots (each verified), then replays it (from a snapshot if
the log is compacted) and checks every stored checkpoint hash it reaches.
  --machines MODULE  the module exporting the document's machine (default: the demo board)
  -h, --help         this text
It never writes to DIR, and cannot read the data of a running hub (LevelDB lets one process
open a directory): stop the hub first.`

export interface InspectArgs {
  readonly dir: string
  readonly docId: string | undefined
  readonly machines: string | undefined
}

export const parseInspectArgs = (argv: ReadonlyArray<string>): InspectArgs | "help" => {
  const positional: string[] = []
  let machines: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--help" || a === "-h") return "help"
    if (a === "--machines" || a.startsWith("--machines=")) {
      const value = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i]
      if (value === undefined || value === "" || (!a.includes("=") && value.startsWith("--"))) throw new ConfigError(`--machines needs a value.\n${INSPECT_USAGE}`)
      machines = value
      continue
    }
    if (a.startsWith("--")) throw new ConfigError(`Unknown option ${a.split("=")[0]}.\n${INSPECT_USAGE}`)
    positional.push(a)
  }
  if (positional.length === 0) throw new ConfigError(`Which data directory? Pass it: canon inspect DIR.\n${INSPECT_USAGE}`)
  if (positional.length > 2) throw new ConfigError(`Unexpected argument "${positional[2]}".\n${INSPECT_USAGE}`)
  return { dir: positional[0]!, docId: positional[1], machines }
}

export { plural }

const problemOf = (s: SnapshotCheck): string | undefined => (s.verdict.ok ? undefined : s.verdict.reason)

/** One line per stored snapshot, newest first. */
const snapshotLine = (s: SnapshotCheck): string => {
  const m = s.meta
  const why = problemOf(s)
  return `  snapshot at seq ${fmt(m.seq)}: ${kib(m.size)} in ${plural(m.chunks, "chunk", "chunks")}, hash ${m.hash}: ${why === undefined ? "verifies" : `DOES NOT VERIFY (${why})`}`
}

/** Returns the exit code: 0 fine, 1 a checkpoint mismatch or a damaged snapshot, log or head record, 2 usage or unreadable data. */
export const inspect = async (dir: string, docId: string | undefined, machinesModule: string | undefined, report: InspectOutput): Promise<number> => {
  const out = shownOutput(report)
  let storage: ReadOnlyStore
  try {
    storage = await ReadOnlyStore.open(dir)
  } catch (e) {
    if (!(e instanceof NotInspectable)) throw e
    out.log(e.message)
    return 2
  }
  try {
    if ((await storage.get(formatKey)) === undefined) {
      // A hub that never stored anything has an empty store; anything else is not Canon's.
      if (await storage.isEmpty()) {
        out.log(`${dir} holds no documents.`)
        return 0
      }
      out.log(`${dir} is not a Canon data directory (a LevelDB store without Canon's format record): pass the hub's --data directory.`)
      return 2
    }
    const store = new AuthorityStore(storage, { readOnly: true })
    let heads: Awaited<ReturnType<AuthorityStore["heads"]>>
    try {
      heads = await store.heads()
    } catch (e) {
      if (!(e instanceof CanonError)) throw e
      out.log(`${dir}: ${e.message}`)
      return 2
    }
    if (docId === undefined) {
      if (heads.length === 0) out.log(`${dir} holds no documents.`)
      for (const { docId: id, head, problem } of heads) {
        // Listed, not thrown (AuthorityStore.heads): one damaged head does not hide the others.
        if (problem !== undefined) {
          out.log(`${id ?? "(a document whose id is unreadable)"}  DAMAGED HEAD: ${problem}`)
          continue
        }
        const horizon = await store.snapshots.horizon(id)
        const shape = await logShape(storage, id, horizon)
        const bytes = await recordBytes(storage, id)
        const newest = (await store.snapshots.metas(id).catch(() => []))[0]
        // The head record carries the checkpoint of its last commit; one published when the
        // document went quiet is stored beside it (AuthorityStore.putCheckpoint) and may be newer.
        const quiet = (await store.checkpoints(id, 1).catch(() => []))[0]
        const newestCp = quiet !== undefined && quiet.seq > (head.checkpoint?.seq ?? 0) ? quiet : head.checkpoint
        const cp = newestCp ? `checkpoint at ${fmt(newestCp.seq)} (${newestCp.hash})` : "no checkpoint yet"
        const compacted = horizon > 0 ? `  compacted through ${fmt(horizon)}` : ""
        const snapshot = newest !== undefined ? `  snapshot at ${fmt(newest.seq)}` : ""
        out.log(`${id}  ${head.machine} v${head.version}  seq ${fmt(head.seq)}  ${plural(shape.entries, "entry", "entries")}  ${kib(bytes.total)}${snapshot}${compacted}  ${cp}`)
      }
      return heads.some((h) => h.problem !== undefined) ? 1 : 0
    }
    const found = heads.find((h) => h.docId === docId)
    if (found === undefined) {
      out.log(`No document "${docId}" in ${dir}. Run \`canon inspect ${dir}\` to list them.`)
      return 2
    }
    if (found.problem !== undefined) {
      out.log(`${docId}: DAMAGED HEAD: ${found.problem}`)
      return 1
    }
    const head = found.head
    const machines = await loadMachines(machinesModule)
    const machine: Machine<any, any> | undefined = machines.find((m) => m.name === head.machine)
    if (machine === undefined) {
      out.log(`Document "${docId}" is a "${head.machine}" machine; pass --machines with a module that exports it.`)
      return 2
    }
    const survey = await surveyDoc(storage, docId)
    const problems: string[] = []

    // What is stored.
    out.log(`${docId}: ${head.machine} v${head.version}, head at seq ${fmt(head.seq)}`)
    const { log, horizon } = survey
    const kept = log.entries - log.belowHorizon
    const seqs = log.first !== undefined ? ` (seqs ${fmt(log.first)}-${fmt(log.last!)})` : ""
    out.log(horizon > 0
      ? `  log: ${plural(kept, "entry", "entries")} kept${seqs}; compacted through seq ${fmt(horizon)} (entries at or below it are gone)`
      : `  log: ${plural(kept, "entry", "entries")}${seqs}, never compacted`)
    out.log(`  on disk: ${describeBytes(survey.bytes)}`)
    if (survey.metasProblem !== undefined) problems.push(survey.metasProblem)
    if (survey.snapshots.length === 0 && survey.metasProblem === undefined) out.log("  no snapshot stored")
    for (const s of survey.snapshots) {
      out.log(snapshotLine(s))
      const why = problemOf(s)
      if (why !== undefined) problems.push(`The snapshot of "${docId}" at seq ${fmt(s.meta.seq)} does not verify: ${why}. ${fallback(survey, head.seq, s.meta.seq)}`)
    }
    const leftovers: string[] = []
    for (const [seq, n] of survey.orphans) leftovers.push(`${plural(n, "chunk", "chunks")} of an unfinished snapshot at seq ${fmt(seq)}`)
    if (log.belowHorizon > 0) leftovers.push(`${plural(log.belowHorizon, "entry", "entries")} at or below the horizon`)
    if (leftovers.length > 0) out.log(`  left by an interrupted write: ${leftovers.join("; ")} (the hub deletes them when it loads the document)`)

    // The replay.
    const result = await replayDoc(storage, docId, machine, head.seq, survey, out.progress, head.version)
    if ("problem" in result) {
      problems.push(result.problem)
    } else {
      const from = result.base === undefined ? "" : ` from the snapshot at seq ${fmt(result.base.seq)}`
      const before = result.before > 0 ? ` (${plural(result.before, "earlier one", "earlier ones")} precede${result.before === 1 ? "s" : ""} the replay: the log behind ${result.before === 1 ? "it" : "them"} is compacted)` : ""
      const snaps = result.snapshotsChecked > 0 ? ` and ${plural(result.snapshotsChecked, "newer snapshot", "newer snapshots")}` : ""
      out.log(`${docId}: replayed ${plural(result.replayed, "entry", "entries")} of ${machine.name} v${machine.version}${from}, checked ${plural(result.checked, "checkpoint", "checkpoints")}${snaps}${before}; state hash ${result.hash}.`)
      problems.push(...result.problems)
    }
    if (problems.length > 0) {
      out.log(`FIRST PROBLEM: ${problems[0]}`)
      if (problems.length > 1) out.log(`(${plural(problems.length - 1, "more problem", "more problems")}.)`)
      return 1
    }
    out.log(survey.snapshots.length > 0 ? "All checkpoints match and every snapshot verifies." : "All checkpoints match.")
    return 0
  } finally {
    await storage.close()
  }
}

/** What the hub does about a snapshot that does not verify. */
const fallback = (survey: DocSurvey, headSeq: number, bad: number): string => {
  const older = survey.snapshots.find((s) => s.verdict.ok && s.meta.seq < bad && s.meta.seq <= headSeq)?.meta
  if (older !== undefined && older.seq >= survey.horizon) return `The hub skips it and loads from the snapshot at seq ${fmt(older.seq)} and the log after it.`
  if (survey.horizon === 0) return "The hub skips it and replays the whole log instead."
  const newer = survey.snapshots.find((s) => s.verdict.ok && s.meta.seq > bad && s.meta.seq <= headSeq)
  if (newer !== undefined) return `The hub loads from the newer snapshot at seq ${fmt(newer.meta.seq)}; this one is deleted at the next snapshot.`
  return `No other snapshot reaches back to the horizon (seq ${fmt(survey.horizon)}): the hub cannot load the document. Restore the data directory from a backup.`
}
