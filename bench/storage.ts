/**
 * The `storage` suite: Canon on LevelDB (adapters/level) against raw `level`, in one run.
 *
 * 1. Raw `level` batch puts/s: the baseline. Batches shaped like Canon's group commits (as
 *    many puts, the same value sizes, log-like keys), taken from a real Canon commit first,
 *    written as chained batches (level's fastest form, the one LevelStorage uses); 1b. the
 *    same through db.batch(array), for reference.
 * 2. Canon's acknowledged commands/s: DocAuthority + AuthorityStore on LevelStorage, one
 *    connection submitting messages of `batch` commands (each acknowledging the previous
 *    message's outcomes, as a real client does) and waiting for their results; each message
 *    is one group commit, one atomic batch. Sync off and sync on (fsync per commit: the
 *    hub's default, so acknowledged means durable), each next to the raw baseline with the
 *    same sync setting, measured back to back per run.
 * 3. The ratio Canon / raw (chained) per run; goal >= 0.7 (issue 13), fsync on and off. 3b. Canon / raw (array), for reference.
 * 4. Acknowledgement latency, p50 and p99 of each run (the figure is their median over runs):
 *    Canon from submit to its results, next to raw level from write() to its callback, for
 *    the same runs as 1-2; then 4b. the same with one command per submit (what a user's single
 *    edit waits for), against one raw batch of a one-command commit's shape.
 * 5. Time to open a document whose log holds 1M entries (100k with --quick), by replay:
 *    Hub.doc on a LevelStorage just reopened (OS page cache warm).
 *
 * Every run writes to a fresh directory under os.tmpdir(), removed afterwards, and checks
 * what it wrote by reading it back, so a broken path cannot look fast.
 */
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { Level } from "level"
import { Hub, type BatchOp, type BatchOptions, type KVStore, type RangeOptions, type Submit } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { VirtualRuntime } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { CollectingConnection } from "./collecting-connection.js"
import { check, collectGarbage, figure, now, type Figure, type Plan, type Suite, type SuiteContext, figureLog, closeOnVirtualTime } from "./harness.js"
import { Counter } from "./machines.js"

const DOC = "bench-doc"
const CLIENT = "bench-client"
const T0 = 1_700_000_000_000

const sizes = (quick: boolean) => ({
  /** Each run measures raw and Canon back to back. --quick: fewer runs, same work per run. */
  plan: quick ? { warmup: 1, warmupMs: 500, runs: 5 } : { warmup: 2, warmupMs: 2_000, runs: 11 },
  /** Commands per group commit. */
  batch: 100,
  /** Group commits per run, sync off and sync on. */
  commits: 500,
  syncCommits: 100,
  /** One-command submits per run (latency figures 4b), sync off and on. */
  singles: 200,
  /** Log length for the replay figure. */
  replayEntries: quick ? 100_000 : 1_000_000,
  replayPlan: { warmup: 1, warmupMs: 0, runs: 3 },
})

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/** A run's rate and the latency of each of its commits (ms). */
interface RunResult {
  readonly rate: number
  readonly p50: number
  readonly p99: number
}

/** Nearest-rank percentile (p in 0..1) of a non-empty list. */
const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

const result = (rate: number, latencies: ReadonlyArray<number>): RunResult => ({ rate, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) })

/** Fresh directories for one figure, all removed by `dispose`. */
export class TempDirs {
  private readonly root = mkdtempSync(path.join(os.tmpdir(), "canon-bench-storage-"))
  private n = 0
  next(label: string): string {
    return path.join(this.root, `${label}-${this.n++}`)
  }
  remove(dir: string): void {
    rmSync(dir, { recursive: true, force: true })
  }
  dispose(): void {
    rmSync(this.root, { recursive: true, force: true })
  }
}


/** Records the batches Canon writes (to shape the raw baseline like them). */
class RecordingStore implements KVStore {
  readonly batches: Array<ReadonlyArray<BatchOp>> = []
  constructor(private readonly inner: KVStore) {}
  get(key: Uint8Array) { return this.inner.get(key) }
  range(o: RangeOptions) { return this.inner.range(o) }
  close() { return this.inner.close() }
  batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions) {
    this.batches.push(ops.map((op) => ({ ...op })))
    return this.inner.batch(ops, options)
  }
}

const submits = (commits: number, size: number): Submit[] => {
  const out: Submit[] = []
  for (let b = 0; b < commits; b++) {
    const commands = []
    for (let i = 1; i <= size; i++) commands.push({ clientSeq: b * size + i, name: "incr", args: { by: 1 } })
    out.push({ type: "submit", docId: DOC, commands, ackedClientSeq: b * size })
  }
  return out
}

/**
 * Canon: `commits` submit messages of `size` commands through the authority on LevelStorage
 * (the hub and the store both told `sync`); returns acknowledged commands/s and the
 * submit -> results latency of the messages. Reopens the directory afterwards to check the head.
 */
export const canonRun = async (dirs: TempDirs, sync: boolean, commits: number, size: number, record?: (kv: KVStore) => KVStore): Promise<RunResult> => {
  const dir = dirs.next(sync ? "canon-sync" : "canon")
  try {
    const storage = await LevelStorage.open(dir, { sync })
    const runtime = new VirtualRuntime(1)
    const hub = new Hub({ machines: [Counter], storage: record ? record(storage) : storage, runtime, sync })
    const doc = await hub.doc(DOC, Counter)
    const conn = new CollectingConnection()
    doc.subscribe(conn, CLIENT, 0, 0)
    await turn()
    const messages = submits(commits, size)
    const latencies: number[] = []
    const t0 = now()
    for (const msg of messages) {
      const done = conn.nextResults()
      const sent = now()
      doc.submit(conn, CLIENT, msg)
      await done
      latencies.push(now() - sent)
    }
    const ms = now() - t0
    const total = commits * size
    check(conn.errors.length === 0, `no error (${conn.errors.join("; ")})`)
    check(doc.headSeq === total && doc.state.value === total && conn.accepted === total && conn.fannedOut === total, "every command committed, acknowledged and fanned out")
    await closeOnVirtualTime(hub, runtime)
    await storage.close()
    const reopened = await LevelStorage.open(dir)
    const head = await new AuthorityStore(reopened).head(DOC)
    check(head?.seq === total, `the stored head is at ${total} after reopening (found ${head?.seq})`)
    await reopened.close()
    return result(total / (ms / 1000), latencies)
  } finally {
    dirs.remove(dir)
  }
}

/** The shape of one Canon group commit: how many puts, and each value's length. */
interface CommitShape {
  readonly valueLengths: ReadonlyArray<number>
  readonly keyBytes: number
}

const shapeOf = (ops: ReadonlyArray<BatchOp>): CommitShape => ({
  valueLengths: ops.map((op) => (op.type === "put" ? op.value.length : 0)),
  keyBytes: Math.round(ops.reduce((n, op) => n + op.key.length, 0) / ops.length),
})

/** Raw-baseline batches: log-like keys (a prefix, then an 8-byte big-endian counter), Canon-sized values. */
const rawBatches = (shape: CommitShape, commits: number): Array<Array<{ type: "put"; key: Uint8Array; value: Uint8Array }>> => {
  const maxLen = Math.max(...shape.valueLengths)
  const noise = new Uint8Array(maxLen).map((_, i) => (i * 131 + 7) & 0xff)
  const prefixLen = Math.max(0, shape.keyBytes - 8)
  const out: Array<Array<{ type: "put"; key: Uint8Array; value: Uint8Array }>> = []
  let n = 0
  for (let b = 0; b < commits; b++) {
    const batch = []
    for (const len of shape.valueLengths) {
      const key = new Uint8Array(prefixLen + 8).fill(0x61, 0, prefixLen)
      new DataView(key.buffer).setBigUint64(prefixLen, BigInt(++n))
      batch.push({ type: "put" as const, key, value: noise.subarray(0, len) })
    }
    out.push(batch)
  }
  return out
}

/**
 * Raw `level`: the same number of batches of the same shape; returns puts/s. `chained` is
 * level's fastest form here and what LevelStorage uses (the baseline the goal is held to);
 * `array` is db.batch(ops) with no options object, ~1.5x slower (with an options object it
 * was 3.5x slower: see adapters/level/storage.ts).
 */
const rawRun = async (dirs: TempDirs, sync: boolean, batches: ReturnType<typeof rawBatches>, form: "chained" | "array" = "chained"): Promise<RunResult> => {
  const dir = dirs.next(sync ? "raw-sync" : "raw")
  try {
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" })
    await db.open()
    const latencies: number[] = []
    const t0 = now()
    if (form === "array") {
      for (const b of batches) {
        const sent = now()
        await (sync ? db.batch(b, { sync: true }) : db.batch(b))
        latencies.push(now() - sent)
      }
    } else {
      for (const b of batches) {
        const sent = now()
        const chain = db.batch()
        for (const op of b) chain.put(op.key, op.value)
        await (sync ? chain.write({ sync: true }) : chain.write())
        latencies.push(now() - sent)
      }
    }
    const ms = now() - t0
    const puts = batches.reduce((n, b) => n + b.length, 0)
    const stored = (await db.keys().all()).length
    check(stored === puts, `raw level holds every put (${stored} of ${puts})`)
    await db.close()
    return result(puts / (ms / 1000), latencies)
  } finally {
    dirs.remove(dir)
  }
}

/** One value per measured run of each side, and Canon's per-run ratios to each baseline. */
interface Paired {
  readonly raw: RunResult[]
  readonly rawArray: RunResult[]
  readonly canon: RunResult[]
  readonly ratio: number[]
  readonly ratioArray: number[]
}

/**
 * Warm-up then `plan.runs` runs of raw (chained), raw (array, if given) and Canon back to
 * back: their rates and latencies, and Canon's per-run ratio to each.
 */
const paired = async (plan: Plan, raw: () => Promise<RunResult>, rawArray: (() => Promise<RunResult>) | undefined, canon: () => Promise<RunResult>): Promise<Paired> => {
  collectGarbage()
  const started = now()
  for (let i = 0; i < plan.warmup || now() - started < plan.warmupMs; i++) {
    await raw()
    await rawArray?.()
    await canon()
  }
  const out: Paired = { raw: [], rawArray: [], canon: [], ratio: [], ratioArray: [] }
  for (let i = 0; i < plan.runs; i++) {
    const r = await raw()
    const a = await rawArray?.()
    const c = await canon()
    out.raw.push(r)
    out.canon.push(c)
    out.ratio.push(c.rate / r.rate)
    if (a !== undefined) {
      out.rawArray.push(a)
      out.ratioArray.push(c.rate / a.rate)
    }
  }
  return out
}

const rates = (xs: ReadonlyArray<RunResult>): number[] => xs.map((x) => x.rate)
const p50s = (xs: ReadonlyArray<RunResult>): number[] => xs.map((x) => x.p50)
const p99s = (xs: ReadonlyArray<RunResult>): number[] => xs.map((x) => x.p99)

/** Writes a log of `entries` `incr` entries for DOC through AuthorityStore.commit (10k per batch). */
const buildLog = async (location: string, entries: number): Promise<void> => {
  const kv = await LevelStorage.open(location)
  const store = new AuthorityStore(kv)
  await store.open()
  const per = 10_000
  for (let from = 1; from <= entries; from += per) {
    const to = Math.min(entries, from + per - 1)
    const batch = []
    for (let seq = from; seq <= to; seq++) batch.push({ seq, time: T0 + seq, clientId: CLIENT, clientSeq: seq, name: "incr", args: { by: 1 } })
    await store.commit(DOC, {
      head: { machine: Counter.name, version: Counter.version, seq: to, lastTime: T0 + to, checkpoint: undefined },
      entries: batch,
      marks: to === entries ? [[CLIENT, { last: entries, acked: entries, evictedThrough: 0, evictedBound: 0, incarnation: 1 }]] : [],
    })
  }
  await kv.close()
}

/** Opens the directory and loads DOC by replaying its log; returns [levelOpenMs, loadMs]. */
const replayRun = async (location: string, entries: number): Promise<[number, number]> => {
  const t0 = now()
  const storage = await LevelStorage.open(location)
  const t1 = now()
  const runtime = new VirtualRuntime(1)
  const hub = new Hub({ machines: [Counter], storage, runtime })
  const doc = await hub.doc(DOC, Counter)
  const t2 = now()
  check(doc.headSeq === entries && doc.state.value === entries, `the document replays to seq ${entries} (got ${doc.headSeq}, value ${doc.state.value})`)
  await closeOnVirtualTime(hub, runtime)
  await storage.close()
  return [t1 - t0, t2 - t1]
}

const run = async (ctx: SuiteContext): Promise<Figure[]> => {
  const s = sizes(ctx.quick)
  const { figures, add } = figureLog(ctx)
  const dirs = new TempDirs()
  try {
    // Shape the baseline like a real Canon commit: record one run's batches, take a middle one.
    let recorder: RecordingStore | undefined
    await canonRun(dirs, false, 20, s.batch, (kv) => (recorder = new RecordingStore(kv)))
    const commitsSeen = recorder!.batches.filter((b) => b.length > 1)
    const shape = shapeOf(commitsSeen[commitsSeen.length >> 1]!)
    const entryLen = shape.valueLengths[0]!
    const rest = shape.valueLengths.slice(s.batch)
    const shapeNote = `${shape.valueLengths.length} puts per batch (${s.batch} entries of ${entryLen} B, then ${rest.map((n) => `${n} B`).join(" + ")}: client record, head), keys ~${shape.keyBytes} B`
    ctx.log(`Canon's group commit of ${s.batch} commands: ${shapeNote}`)
    const batches = rawBatches(shape, s.commits)
    const syncBatches = rawBatches(shape, s.syncCommits)

    const off = await paired(s.plan, () => rawRun(dirs, false, batches), () => rawRun(dirs, false, batches, "array"), () => canonRun(dirs, false, s.commits, s.batch))
    const on = await paired(s.plan, () => rawRun(dirs, true, syncBatches), () => rawRun(dirs, true, syncBatches, "array"), () => canonRun(dirs, true, s.syncCommits, s.batch))

    // One command per submit: a one-command commit's shape for its raw baseline.
    let singleRecorder: RecordingStore | undefined
    await canonRun(dirs, false, 20, 1, (kv) => (singleRecorder = new RecordingStore(kv)))
    const singleSeen = singleRecorder!.batches.filter((b) => b.length > 1)
    const singleShape = shapeOf(singleSeen[singleSeen.length >> 1]!)
    const singleBatches = rawBatches(singleShape, s.singles)
    const oneOff = await paired(s.plan, () => rawRun(dirs, false, singleBatches), undefined, () => canonRun(dirs, false, s.singles, 1))
    const oneOn = await paired(s.plan, () => rawRun(dirs, true, singleBatches), undefined, () => canonRun(dirs, true, s.singles, 1))

    const rawNote = `raw level chained batch (db.batch().put()...write()), ${s.commits} batches per run shaped like Canon's: ${shapeNote}`
    const latencyNote = (what: string, n: number) => `${what}; per run over its ${n} commits, median of the runs`
    for (const [sync, r, commits] of [["off", off, s.commits], ["on", on, s.syncCommits]] as const) {
      const suffix = sync === "on" ? "-sync" : ""
      add(figure(`raw-batch-puts${suffix}`, `1. raw level batch puts (sync ${sync})`, "puts/s", rates(r.raw),
        { note: sync === "off" ? rawNote : `as above, ${s.syncCommits} batches per run, fsync per batch` }))
      add(figure(`canon-acked${suffix}`, `2. Canon acknowledged commands (sync ${sync})`, "commands/s", rates(r.canon),
        { note: sync === "off"
          ? `DocAuthority + AuthorityStore on LevelStorage, one connection, ${s.commits} group commits of ${s.batch} commands per run, one live subscriber; Hub { sync: false }`
          : `as above, ${s.syncCommits} group commits of ${s.batch} per run, Hub { sync: true } (the default) and LevelStorage { sync: true }: fsync per group commit` }))
      add(figure(`canon-ratio${suffix}`, `3. Canon / raw (sync ${sync})`, "x", r.ratio,
        { goal: { op: ">=", value: 0.7 }, note: "acknowledged commands/s over raw puts/s, per run, measured back to back" }))
      add(figure(`raw-array-puts${suffix}`, `1b. raw level db.batch(array) puts (sync ${sync})`, "puts/s", rates(r.rawArray),
        { note: sync === "off" ? "the same batches through db.batch(ops) (no options object): the array form, for reference" : "db.batch(ops, { sync: true }), for reference" }))
      add(figure(`canon-ratio-array${suffix}`, `3b. Canon / raw db.batch(array) (sync ${sync})`, "x", r.ratioArray,
        { note: sync === "off" ? "for reference: the goal is held to the chained baseline (3.), the form LevelStorage uses" : "for reference" }))
      add(figure(`raw-latency-p50${suffix}`, `4. raw level batch write, p50 (sync ${sync})`, "ms", p50s(r.raw), { note: latencyNote("write() to its callback, the runs of 1.", commits) }))
      add(figure(`canon-latency-p50${suffix}`, `4. Canon acknowledgement of ${s.batch} commands, p50 (sync ${sync})`, "ms", p50s(r.canon), { note: latencyNote("submit to results, the runs of 2.", commits) }))
      add(figure(`raw-latency-p99${suffix}`, `4. raw level batch write, p99 (sync ${sync})`, "ms", p99s(r.raw), { note: latencyNote("as above", commits) }))
      add(figure(`canon-latency-p99${suffix}`, `4. Canon acknowledgement of ${s.batch} commands, p99 (sync ${sync})`, "ms", p99s(r.canon), { note: latencyNote("as above", commits) }))
    }
    const singleNote = `${singleShape.valueLengths.length} puts per batch (${singleShape.valueLengths.map((n) => `${n} B`).join(" + ")}), keys ~${singleShape.keyBytes} B`
    for (const [sync, r] of [["off", oneOff], ["on", oneOn]] as const) {
      const suffix = sync === "on" ? "-sync" : ""
      add(figure(`raw-single-p50${suffix}`, `4b. raw level one-command batch, p50 (sync ${sync})`, "ms", p50s(r.raw),
        { note: latencyNote(`write() to its callback, ${s.singles} batches shaped like a one-command commit: ${singleNote}`, s.singles) }))
      add(figure(`canon-single-p50${suffix}`, `4b. Canon acknowledgement of 1 command, p50 (sync ${sync})`, "ms", p50s(r.canon),
        { note: latencyNote(`submit to results, ${s.singles} submits of one command each, one at a time`, s.singles) }))
      add(figure(`raw-single-p99${suffix}`, `4b. raw level one-command batch, p99 (sync ${sync})`, "ms", p99s(r.raw), { note: latencyNote("as above", s.singles) }))
      add(figure(`canon-single-p99${suffix}`, `4b. Canon acknowledgement of 1 command, p99 (sync ${sync})`, "ms", p99s(r.canon), { note: latencyNote("as above", s.singles) }))
      add(figure(`canon-single-rate${suffix}`, `4b. Canon acknowledged commands, 1 per submit (sync ${sync})`, "commands/s", rates(r.canon),
        { note: "one connection, one command in flight at a time: the inverse of the latency" }))
    }

    // Replay.
    const n = s.replayEntries
    const logDir = dirs.next("replay")
    const b0 = now()
    await buildLog(logDir, n)
    ctx.log(`built a ${n.toLocaleString("en-US")}-entry log in ${((now() - b0) / 1000).toFixed(1)} s`)
    collectGarbage()
    const opens: number[] = []
    const loads: number[] = []
    for (let i = 0; i < s.replayPlan.warmup + s.replayPlan.runs; i++) {
      const [o, l] = await replayRun(logDir, n)
      if (i >= s.replayPlan.warmup) {
        opens.push(o)
        loads.push(l)
      }
    }
    const size = n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`
    add(figure("replay-open", `5. open a document with a ${size}-entry log by replay${ctx.quick ? " (--quick: 100k, not 1M)" : ""}`, "ms", loads,
      { note: `Hub.doc -> DocAuthority.load on a LevelStorage just reopened (page cache warm): range reads of 4096 entries, decode, apply (Counter incr); ${n.toLocaleString("en-US")} entries` }))
    add(figure("replay-level-open", `5. LevelStorage.open of that store (${size} entries)`, "ms", opens,
      { note: "opening the LevelDB directory itself (recovery of its write-ahead log), before the replay" }))
    dirs.remove(logDir)
  } finally {
    dirs.dispose()
  }
  return figures
}

export const suite: Suite = { name: "storage", title: "LevelDB: raw batch puts vs Canon's acknowledged commands and their latency (sync off/on), replay", run }
