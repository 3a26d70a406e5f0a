/**
 * `canon compact DATA [docId] [--machines MODULE] [--tail-bytes N]`: compacts the log of one
 * document, or of every document, in a stopped hub's data directory.
 *
 * For each document: a snapshot of its current state, then the log behind it deleted but
 * for a tail of about N bytes (replicas a little behind catch up from entries; one further
 * behind gets the snapshot streamed). Rebuilding the state replays the log (from its newest
 * usable snapshot: replay.ts, which also checks every stored checkpoint on the way and
 * refuses to snapshot a document whose replay disagrees), so it needs the document's
 * machine, from the module `canon serve` runs. The snapshot is written by the hub's own
 * Snapshotter (chunks, then the meta) and the log deleted by SnapshotStore.compact (the
 * horizon, then the entries), the code the authority runs, so a crash of this command
 * leaves what a crash of the hub would, and the next load tidies it.
 *
 * Without a machine, a document whose newest verified snapshot is newer than its horizon is
 * compacted behind that snapshot; the others are listed with the reason.
 *
 * Why not a Hub and `doc.snapshotNow()`: a document's authority tidies crash leftovers in
 * the background right after it loads, and that pass deletes the chunks of any snapshot
 * still being written (they have no meta yet); a snapshot taken right after the load lost
 * its chunks that way, and the log was then compacted behind it (see the report of this
 * change). Here every step runs in order, nothing in the background.
 *
 * In three steps, each on its own handle of the directory: a read-only survey (which also
 * refuses a directory a running hub holds, with inspect's sentence), the writes (LevelStorage,
 * every batch fsynced), then LevelDB's own compaction of the key space, so the deleted
 * records leave the disk now rather than at some later LevelDB compaction.
 */
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { Level } from "level"
import { CanonError, hashState, type KVStore, type Machine } from "../../core/index.js"
import { AuthorityStore } from "../../core/internal.js"
import { historyOf } from "../../core/schema/registry.js"
import { Snapshotter } from "../../core/authority/snapshots.js"
import * as K from "../../core/store/keys.js"
import type { SnapshotMeta } from "../../core/store/snapshot-store.js"
import type { AuthorityHead } from "../../core/store/records.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { ConfigError } from "../hub/config.js"
import { loadMachines } from "./load-machines.js"
import { NotInspectable, ReadOnlyStore, inUseSentence } from "./read-only-store.js"
import { fmt, kib, logShape, newestVerified, plural, recordBytes, surveyDoc, type DocSurvey } from "./doc-records.js"
import { replayDoc } from "./replay.js"
import type { Progress } from "./progress.js"
import { shownOutput } from "./terminal-text.js"

/** The hub's default tail (core/authority/snapshots.ts, DEFAULTS.tailBytes). */
export const DEFAULT_TAIL_BYTES = 64 << 10

export const COMPACT_USAGE = `Usage: canon compact DATA [docId] [--machines MODULE] [--tail-bytes N]   (from a checkout: npm run canon -- compact ...)
Compacts the log of document docId, or of every document, in a hub's data directory DATA:
takes a snapshot of its current state and deletes the log behind it, keeping about N bytes
of the newest entries (replicas a little behind catch up from those; one further behind is
sent the snapshot).
  --machines MODULE  the module exporting the documents' machines, as for canon serve: taking
                     a snapshot replays the log. Without it, only a document that already
                     has a snapshot newer than its compaction horizon is compacted (behind
                     that snapshot); the others are listed with the reason.
  --tail-bytes N     bytes of log kept behind the snapshot (default ${DEFAULT_TAIL_BYTES}, the hub's default)
  -h, --help         this text
Stop the hub first: a running hub holds the directory (LevelDB lets one process open it).
Exit code 0: every document compacted or nothing to do; 1: some were not (see the lines);
2: usage, or DATA cannot be used.`

export interface CompactArgs {
  readonly dir: string
  readonly docId: string | undefined
  readonly machines: string | undefined
  readonly tailBytes: number
}

export interface CompactOutput {
  log(line: string): void
  progress: Progress
}

export const parseCompactArgs = (argv: ReadonlyArray<string>): CompactArgs | "help" => {
  const positional: string[] = []
  let machines: string | undefined
  let tailBytes = DEFAULT_TAIL_BYTES
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--help" || a === "-h") return "help"
    const flag = ["--machines", "--tail-bytes"].find((f) => a === f || a.startsWith(`${f}=`))
    if (flag !== undefined) {
      const value = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i]
      if (value === undefined || value === "" || (!a.includes("=") && value.startsWith("--"))) throw new ConfigError(`${flag} needs a value.\n${COMPACT_USAGE}`)
      if (flag === "--machines") machines = value
      else {
        const n = Number(value)
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new ConfigError(`--tail-bytes must be a whole number of bytes, not "${value}".`)
        tailBytes = n
      }
      continue
    }
    if (a.startsWith("--")) throw new ConfigError(`Unknown option ${a.split("=")[0]}.\n${COMPACT_USAGE}`)
    positional.push(a)
  }
  if (positional.length === 0) throw new ConfigError(`Which data directory? Pass it: canon compact DATA.\n${COMPACT_USAGE}`)
  if (positional.length > 2) throw new ConfigError(`Unexpected argument "${positional[2]}".\n${COMPACT_USAGE}`)
  return { dir: positional[0]!, docId: positional[1], machines, tailBytes }
}

/** Bytes of the LevelDB files in a directory. */
const diskBytes = (dir: string): number => {
  let n = 0
  for (const name of readdirSync(dir)) {
    const s = statSync(join(dir, name))
    if (s.isFile()) n += s.size
  }
  return n
}

/** What the read-only survey found about one document, and what to do with it. */
interface Plan {
  readonly docId: string
  readonly head: AuthorityHead
  readonly survey: DocSurvey
  readonly newest: SnapshotMeta | undefined
  /** The horizon a snapshot at the head would allow. */
  readonly atHead: number
  /** The horizon the newest verified snapshot allows (0 without one). */
  readonly behindNewest: number
}

interface Outcome {
  readonly compacted: boolean
  /** Not compacted for a reason the user can act on (exit code 1). */
  readonly failed: boolean
  readonly bytesAfter: number
}

/** The lowest stored entry seq at or below `upTo`, if any. */
const lowestEntry = async (kv: KVStore, docId: string, upTo: number): Promise<number | undefined> => {
  const [row] = await kv.range({ gte: K.authEntryPrefix(docId), lt: K.authEntry(docId, upTo + 1), limit: 1 })
  return row === undefined ? undefined : K.seqFromKey(row[0])
}

export const compact = async (args: CompactArgs, report: CompactOutput): Promise<number> => {
  const out = shownOutput(report)
  const { dir, tailBytes } = args
  // ---- 1. survey, read-only ----
  let ro: ReadOnlyStore
  try {
    ro = await ReadOnlyStore.open(dir)
  } catch (e) {
    if (!(e instanceof NotInspectable)) throw e
    out.log(e.message)
    return 2
  }
  const plans: Plan[] = []
  /** Documents whose head record is damaged: reported and left alone. */
  let damaged = 0
  const diskBefore = diskBytes(dir)
  try {
    if ((await ro.get(K.formatKey)) === undefined) {
      if (await ro.isEmpty()) {
        out.log(`${dir} holds no documents: nothing to compact.`)
        return 0
      }
      out.log(`${dir} is not a Canon data directory (a LevelDB store without Canon's format record): pass the hub's --data directory.`)
      return 2
    }
    const store = new AuthorityStore(ro, { readOnly: true })
    let heads: Awaited<ReturnType<AuthorityStore["heads"]>>
    try {
      heads = await store.heads()
    } catch (e) {
      if (!(e instanceof CanonError)) throw e
      out.log(`${dir}: ${e.message}`)
      return 2
    }
    const chosen = args.docId === undefined ? heads : heads.filter((h) => h.docId === args.docId)
    // Listed, not thrown (AuthorityStore.heads): the others are compacted, the exit code says 1.
    if (args.docId !== undefined && chosen.length === 0) {
      out.log(`No document "${args.docId}" in ${dir}. Run \`canon inspect ${dir}\` to list them.`)
      return 2
    }
    if (chosen.length === 0) {
      out.log(`${dir} holds no documents: nothing to compact.`)
      return 0
    }
    for (const { docId, head, problem } of chosen) {
      if (problem !== undefined) {
        out.log(`${docId ?? "A document"}: not compacted: its head record is damaged: ${problem}`)
        damaged++
        continue
      }
      const survey = await surveyDoc(ro, docId)
      const newest = newestVerified(survey, head.seq)
      plans.push({
        docId, head, survey, newest,
        atHead: head.seq > 0 ? await store.horizonFor(docId, head.seq, tailBytes) : 0,
        behindNewest: newest !== undefined ? await store.horizonFor(docId, newest.seq, tailBytes) : 0,
      })
    }
  } finally {
    await ro.close()
  }

  const machines: ReadonlyArray<Machine<any, any>> = args.machines === undefined ? [] : await loadMachines(args.machines)
  out.log(`Compacting ${plural(plans.length, "document", "documents")} in ${dir}, keeping about ${kib(tailBytes)} of log behind each snapshot.`)

  // ---- 2. the writes ----
  let storage: LevelStorage
  try {
    storage = await LevelStorage.open(dir, { sync: true })
  } catch (e) {
    // Taken between the survey and now.
    if (e instanceof CanonError && e.code === "storage-in-use") {
      out.log(inUseSentence(dir))
      return 2
    }
    throw e
  }
  const outcomes: Outcome[] = []
  let recordsBefore = 0
  let recordsAfter = 0
  try {
    for (const p of plans) {
      recordsBefore += p.survey.bytes.total
      const outcome = await compactOne(storage, p, machines, args, out)
      outcomes.push(outcome)
      recordsAfter += outcome.bytesAfter
    }
  } finally {
    await storage.close()
  }

  // ---- 3. LevelDB's compaction: deleted records leave the disk now ----
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view", createIfMissing: false })
  await db.open()
  try {
    // classic-level (Node) has it; the `level` typings cover browsers too, which do not.
    const native = db as unknown as { compactRange?: (start: Uint8Array, end: Uint8Array) => Promise<void> }
    await native.compactRange?.(new Uint8Array([0]), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
  } finally {
    await db.close()
  }
  const diskAfter = diskBytes(dir)
  const done = outcomes.filter((o) => o.compacted).length
  out.log(`${plural(done, "document", "documents")} of ${fmt(outcomes.length)} compacted. Records: ${kib(recordsBefore)} before, ${kib(recordsAfter)} after; ` +
    `LevelDB files on disk: ${kib(diskBefore)} before, ${kib(diskAfter)} after.`)
  return damaged > 0 || outcomes.some((o) => o.failed) ? 1 : 0
}

const machineHint = (module: string | undefined, machine: string): string =>
  module === undefined
    ? `pass --machines with the module that exports "${machine}" (the one canon serve runs)`
    : `${module} exports no machine "${machine}": pass the module that does`

/** A snapshot of the state at the head, written by the hub's Snapshotter; the replay checks what it passes. */
const snapshotAtHead = async (kv: LevelStorage, p: Plan, machine: Machine<any, any>, out: CompactOutput): Promise<SnapshotMeta | { readonly problem: string }> => {
  if (p.head.version > machine.version) {
    return { problem: `it was written by machine "${machine.name}" v${p.head.version} and the module has v${machine.version}: pass the module the hub runs (a document is never read by an older machine).` }
  }
  const from = p.newest !== undefined && p.survey.horizon > 0 ? `the snapshot at seq ${fmt(p.newest.seq)} and ` : ""
  out.log(`${p.docId}: replaying ${from}its log to seq ${fmt(p.head.seq)} (${p.head.machine} v${machine.version}) for a snapshot...`)
  const replayed = await replayDoc(kv, p.docId, machine, p.head.seq, p.survey, (done, total) => out.progress(done, total, `${p.docId}: replaying`), p.head.version)
  if ("problem" in replayed) return { problem: replayed.problem }
  if (replayed.problems.length > 0) {
    return { problem: `replaying it found a problem, so no snapshot was taken: ${replayed.problems[0]} (canon inspect ${kv.location} ${p.docId} says more)` }
  }
  let failure: string | undefined
  const snapshotter = new Snapshotter(p.docId, new AuthorityStore(kv, { sync: true }).snapshots, systemRuntime, undefined, (_code, message) => (failure ??= message))
  // With CRDT fields a snapshot holds the state plus `$crdt` (the fields' bytes), as the hub's do,
  // and its checkpoint is the state hash (fields included), not the snapshot's byte hash.
  // (The fields of the head's version: a document held at an older one has that version's.)
  const history = historyOf(machine)
  const at = history?.has(p.head.version) === true ? history.at(p.head.version) : machine
  const fields = at.crdt !== undefined ? at.crdtRuntime?.fieldsOf(at.crdt, { root: replayed.state }) : undefined
  const state = fields === undefined ? replayed.state : fields.snapshotOf(replayed.state)
  // Nothing changes the state while it is encoded: a freeze that resolves to the live
  // containers lets the Snapshotter write chunk by chunk instead of encoding it all first.
  const meta = await snapshotter.take({ root: state, freeze: () => ({ root: state, resolve: (c) => c, release: () => {} }) }, p.head.seq, p.head.lastTime, true)
  if (failure !== undefined) return { problem: failure }
  // What the hub stores with a snapshot: a checkpoint, for later checks.
  await new AuthorityStore(kv).putCheckpoint(p.docId, { seq: meta.seq, hash: fields === undefined ? meta.hash : hashState(replayed.state) })
  out.log(`${p.docId}: snapshot at seq ${fmt(meta.seq)} stored (${kib(meta.size)} in ${plural(meta.chunks, "chunk", "chunks")}, hash ${meta.hash})`)
  return meta
}

const compactOne = async (storage: LevelStorage, p: Plan, machines: ReadonlyArray<Machine<any, any>>, args: CompactArgs, out: CompactOutput): Promise<Outcome> => {
  const { tailBytes } = args
  const store = new AuthorityStore(storage, { sync: true })
  const leave = async (why: string, failed: boolean): Promise<Outcome> => {
    out.log(`${p.docId}: not compacted: ${why}`)
    return { compacted: false, failed, bytesAfter: (await recordBytes(storage, p.docId)).total }
  }
  if (p.head.seq === 0) return leave("nothing to do: it has no entries.", false)
  // The hub could not load it either; compacting would only hide the damage.
  if (p.survey.metasProblem !== undefined) return leave(`${p.survey.metasProblem} (see canon inspect ${storage.location} ${p.docId}).`, true)
  if (p.atHead <= p.survey.horizon) {
    return leave(p.survey.horizon > 0
      ? `nothing to do: it is compacted through seq ${fmt(p.survey.horizon)} and the entries after that are within the kept tail (${kib(tailBytes)}).`
      : `nothing to do: its whole log is within the kept tail (${kib(tailBytes)}).`, false)
  }
  const machine = machines.find((m) => m.name === p.head.machine)
  let base = p.newest
  if ((base?.seq ?? 0) < p.head.seq && machine !== undefined) {
    const taken = await snapshotAtHead(storage, p, machine, out)
    if ("problem" in taken) return leave(taken.problem, true)
    base = taken
  }
  if (base !== undefined && base.seq < p.survey.horizon) {
    return leave(`its newest snapshot that verifies (seq ${fmt(base.seq)}) is behind its horizon (seq ${fmt(p.survey.horizon)}): the hub cannot load it; see canon inspect ${storage.location} ${p.docId}.`, true)
  }
  if (base === undefined || (base === p.newest && p.behindNewest <= p.survey.horizon)) {
    const has = base === undefined
      ? "it has no snapshot that verifies"
      : `its newest snapshot (seq ${fmt(base.seq)}) leaves nothing behind it to delete beyond the kept tail${p.survey.horizon > 0 ? ` (it is compacted through seq ${fmt(p.survey.horizon)})` : ""}`
    return leave(`${has}, and a snapshot at its head (seq ${fmt(p.head.seq)}) is taken by replaying its log, which needs its machine: ${machineHint(args.machines, p.head.machine)}.`, true)
  }

  // Leftovers first (what the hub's load would delete): older snapshots, chunks of unfinished ones.
  for (const m of await store.snapshots.metas(p.docId)) if (m.seq < base.seq) await store.snapshots.drop(p.docId, m.seq)
  await store.snapshots.dropOrphans(p.docId)
  // Then the log: the horizon moves first, then the entries at or below it go, a page per batch.
  const horizon = Math.max(p.survey.horizon, await store.horizonFor(p.docId, base.seq, tailBytes))
  const first = await lowestEntry(storage, p.docId, horizon)
  // The checkpoints below the horizon go too, swept from the first (a store from before compaction deleted them keeps them all).
  if (first !== undefined) {
    const total = horizon - first + 1
    await store.snapshots.compact(p.docId, horizon, (deleted) => out.progress(deleted, total, `${p.docId}: deleting entries`), undefined, true)
  } else if (p.survey.horizon > 0) await store.snapshots.compact(p.docId, p.survey.horizon, undefined, undefined, true)
  if (base.seq < p.head.seq) {
    out.log(`${p.docId}: compacted behind its snapshot at seq ${fmt(base.seq)}, older than its head (seq ${fmt(p.head.seq)}): ` +
      `${machineHint(args.machines, p.head.machine)} to take one at the head and compact further.`)
  }
  const bytes = await recordBytes(storage, p.docId)
  const shape = await logShape(storage, p.docId, horizon)
  out.log(`${p.docId}: compacted through seq ${fmt(horizon)}: ${plural(p.survey.log.entries, "entry", "entries")} -> ${fmt(shape.entries)}, ` +
    `log ${kib(p.survey.bytes.log)} -> ${kib(bytes.log)}, all records ${kib(p.survey.bytes.total)} -> ${kib(bytes.total)}`)
  return { compacted: true, failed: false, bytesAfter: bytes.total }
}
